import type { ConsoleMessage, Page } from 'playwright-core'
import type { Test } from 'tap'
import { browserTest, dashboardService, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * A signed-out dashboard sends no silent refresh: the page cannot see the
 * httpOnly refresh cookie, so it keeps a marker in localStorage while it
 * holds a session (dashboard/src/api.ts) and refreshes on load only when the
 * marker is there. A first visit, a reload after signing out, and a stale
 * marker (one failed refresh, then none) in headless Chromium; a reload while
 * signed in still signs back in through the cookie.
 */

const PASSWORD = 'a fine passphrase'
const MARKER = 'token-auth-dashboard:session'

await browserTest('a signed-out dashboard sends no refresh', run)

async function run (t: Test) {
  const { app, origin, tokenRequests } = await dashboardService(t)
  const adminEmail = `signed-out-admin-${Date.now()}@e2e.test`
  const signup = await app.inject({ method: 'POST', url: '/auth/signup', payload: { email: adminEmail, password: PASSWORD, client_id: 'mobile' } })
  const adminId = signup.json().user.id as string
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })

  const context = await launchBrowser(t, 'signed-out')
  const problems: string[] = []
  const page = watchPage(context.pages()[0] ?? (await context.newPage()), problems)
  // What the issue saw: "Failed to load resource: the server responded with a status of 400".
  const consoleErrors: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') consoleErrors.push(message.text())
  })
  const marker = (p: Page) => p.evaluate(`localStorage.getItem(${JSON.stringify(MARKER)})`) as Promise<string | null>
  const signInPage = (p: Page) => p.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
  /** Loads the dashboard afresh; the POST /auth/token requests the load sent. */
  async function load (p: Page, ready: (p: Page) => Promise<void>): Promise<number> {
    const before = tokenRequests()
    // One full load: a reload once on the dashboard (a goto that changes only the hash would not load the page).
    if (p.url().startsWith(`${origin}/dashboard/`)) await p.reload()
    else await p.goto(`${origin}/dashboard/#/users`)
    await ready(p)
    // A refresh, had one been sent, leaves before the page renders its verdict; give a stray one time anyway.
    await p.waitForTimeout(300)
    return tokenRequests() - before
  }

  await t.test('a first visit: the sign-in page, no refresh, no error in the console', async (t) => {
    t.equal(await load(page, signInPage), 0, 'no POST /auth/token')
    t.same(consoleErrors, [], 'nothing logged as an error')
    t.equal(await marker(page), null, 'no marker')
  })

  await t.test('signed in: the marker is set, and a reload signs back in through the cookie', async (t) => {
    await page.getByLabel('Email').fill(adminEmail)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByTestId('users').waitFor()
    t.equal(await marker(page), '1', 'the marker holds no secret')
    t.equal(await page.evaluate('document.cookie'), '', 'the refresh cookie itself stays invisible to the page')
    t.equal(await load(page, (p) => p.getByTestId('users').waitFor()), 1, 'one refresh restored the session')
  })

  await t.test('signed out: the marker is gone, and a reload sends no refresh', async (t) => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await signInPage(page)
    t.equal(await marker(page), null, 'cleared at sign-out')
    consoleErrors.length = 0
    t.equal(await load(page, signInPage), 0, 'no POST /auth/token')
    t.same(consoleErrors, [], 'nothing logged as an error')
  })

  await t.test('a stale marker (the cookie gone meanwhile): one refresh, then none', async (t) => {
    await page.evaluate(`localStorage.setItem(${JSON.stringify(MARKER)}, '1')`)
    t.equal(await load(page, signInPage), 1, 'the marker is trusted once')
    t.equal(await marker(page), null, 'and cleared by the failed refresh')
    t.equal(await load(page, signInPage), 0, 'the next load sends none')
  })

  t.same(problems, [], 'no page errors or CSP refusals')
}
