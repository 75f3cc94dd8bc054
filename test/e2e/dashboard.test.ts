import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, jsonApi, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * The admin dashboard in real headless Chromium (Debian's /usr/bin/chromium
 * driven by playwright-core; never a downloaded browser), against the service
 * listening on 127.0.0.1 with ISSUER set to the URL the browser uses, so the
 * dashboard's Origin is the issuer's own. Screenshots of every page go to
 * .tap/e2e-screenshots/.
 */

const SCREENSHOTS = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
const PASSWORD = 'a fine passphrase'

await browserTest('the admin dashboard in headless Chromium', run)

async function run (t: Test) {
  const server = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: '' }))
  t.teardown(server.close)
  const { app, issuer: origin } = server

  // Every POST /auth/token the service receives (refreshes and logins).
  let tokenRequests = 0
  app.server.on('request', (request) => {
    if (request.method === 'POST' && request.url?.split('?')[0] === '/auth/token') tokenRequests++
  })

  const api = jsonApi(origin)
  async function signUp (email: string): Promise<string> {
    const response = await api('POST', '/auth/signup', { email, password: PASSWORD })
    if (response.status !== 201) throw new Error(`signup ${email}: ${response.status}`)
    return response.body.user.id as string
  }
  /** A body-transport login: a session whose refresh token the test holds. */
  async function mobileLogin (email: string) {
    return api('POST', '/auth/token', { grant_type: 'password', username: email, password: PASSWORD, client_id: 'mobile' })
  }
  const refreshWith = (refreshToken: string) =>
    api('POST', '/auth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'mobile' })

  const stamp = Date.now()
  const adminEmail = `admin-${stamp}@e2e.test`
  const adminId = await signUp(adminEmail)
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  // The admin's address is verified (the dashboard creates an API key below, which needs it).
  await app.db.user.update({ where: { id: adminId }, data: { emailVerifiedAt: new Date() } })
  const plainEmail = `plain-${stamp}@e2e.test`
  await signUp(plainEmail)
  const targetEmail = `target-${stamp}@e2e.test`
  const targetId = await signUp(targetEmail)
  for (let i = 0; i < 3; i++) await signUp(`filler-${i}-${stamp}@e2e.test`)
  const sessionA = await mobileLogin(targetEmail)
  const sessionB = await mobileLogin(targetEmail)
  t.equal(sessionA.status, 200)
  const sidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).sid as string
  const sidA = sidOf(sessionA.body.access_token)

  await mkdir(SCREENSHOTS, { recursive: true })
  const context = await launchBrowser(t, 'e2e')

  // CSP violations and page errors fail the run.
  const problems: string[] = []
  const watch = (page: import('playwright-core').Page) => watchPage(page, problems)
  const shot = (page: import('playwright-core').Page, name: string) =>
    page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })

  const tab1 = watch(context.pages()[0] ?? (await context.newPage()))

  async function login (page: import('playwright-core').Page, email: string) {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }

  await t.test('the dashboard is served with a strict CSP', async (t) => {
    const response = await tab1.goto(`${origin}/dashboard/`)
    t.equal(response?.status(), 200)
    const csp = response?.headers()['content-security-policy'] ?? ''
    t.match(csp, /script-src 'self'(;|$)/)
    t.notMatch(csp, /unsafe-inline|unsafe-eval/)
    await tab1.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    await shot(tab1, 'login')
  })

  await t.test('a non-admin is refused', async (t) => {
    await login(tab1, plainEmail)
    await tab1.getByTestId('login-error').waitFor()
    t.match(await tab1.getByTestId('login-error').textContent(), /not an administrator/)
    await shot(tab1, 'login-refused-non-admin')
    const cookies = await context.cookies(`${origin}/auth/token`)
    t.notOk(cookies.some((c) => c.name === 'refresh_token' && c.value), 'the non-admin session was signed out')
  })

  await t.test('admin login', async (t) => {
    await tab1.getByLabel('Email').fill('')
    await login(tab1, adminEmail)
    await tab1.getByTestId('users').waitFor()
    const cookie = (await context.cookies(`${origin}/auth/token`)).find((c) => c.name === 'refresh_token')
    t.ok(cookie, 'refresh cookie set')
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.path, '/auth')
    t.equal(cookie?.sameSite, 'Strict')
    t.equal(await tab1.evaluate('document.cookie'), '', 'no cookie visible to scripts')
    await shot(tab1, 'users')
  })

  await t.test('find a user and revoke one of their sessions', async (t) => {
    await tab1.getByLabel('Search by email').fill(`target-${stamp}`)
    await tab1.getByRole('button', { name: 'Search' }).click()
    await tab1.getByRole('link', { name: targetEmail }).click()
    await tab1.getByTestId('sessions').waitFor()
    // Sign-up signed them in too: three sessions.
    t.equal(await tab1.locator('[data-testid=sessions] tbody tr').count(), 3, 'three sessions listed')
    await shot(tab1, 'user')
    await tab1.getByRole('button', { name: `Revoke session ${sidA}` }).click()
    await tab1.locator(`tr[data-session-id="${sidA}"]`).waitFor({ state: 'detached' })
    t.equal(await tab1.locator('[data-testid=sessions] tbody tr').count(), 2, 'the others remain')

    const dead = await refreshWith(sessionA.body.refresh_token)
    t.equal(dead.status, 400, 'the revoked session refresh token is dead')
    t.equal(dead.body.error, 'invalid_grant')
    const alive = await refreshWith(sessionB.body.refresh_token)
    t.equal(alive.status, 200, 'the other session lives on')
    sessionB.body.refresh_token = alive.body.refresh_token
  })

  await t.test('disable a user', async (t) => {
    await tab1.getByRole('button', { name: 'Disable user' }).click()
    await tab1.getByRole('button', { name: 'Enable user' }).waitFor()
    t.equal(await tab1.getByTestId('user-status').textContent(), 'disabled')
    await tab1.getByText('No live sessions.').waitFor()
    await shot(tab1, 'user-disabled')
    t.equal((await refreshWith(sessionB.body.refresh_token)).status, 400, 'their sessions are revoked')
    t.equal((await mobileLogin(targetEmail)).status, 400, 'they cannot sign in')
    const user = await app.administration.getUser(targetId)
    t.equal(user?.disabled, true)
  })

  await t.test('audit events with filters', async (t) => {
    await tab1.getByRole('link', { name: 'Audit events' }).first().click()
    await tab1.getByTestId('audit-events').waitFor()
    await tab1.getByLabel('Event type').selectOption('user_disabled')
    await tab1.getByRole('button', { name: 'Filter' }).click()
    await tab1.waitForFunction("location.hash.includes('type=user_disabled')")
    await tab1.getByTestId('audit-events').waitFor()
    const rows = tab1.locator('[data-testid=audit-events] tbody tr')
    t.equal(await rows.count(), 1)
    t.match(await rows.first().textContent(), /user_disabled/)
    await shot(tab1, 'audit-events')
    await tab1.getByLabel('Event type').selectOption('password_changed')
    await tab1.getByRole('button', { name: 'Filter' }).click()
    await tab1.getByText('No audit events match these filters.').waitFor()
    t.pass('empty state shown')
  })

  await t.test('the admin API keys: create (shown once) and revoke', async (t) => {
    await tab1.getByRole('link', { name: 'API keys' }).click()
    await tab1.getByText('You have no API keys.').waitFor()
    await tab1.getByLabel('Key name').fill('ci key')
    await tab1.getByRole('button', { name: 'Create key' }).click()
    const shown = await tab1.getByTestId('created-key').locator('code').textContent()
    t.match(shown, /\S{20,}/, 'the key is shown')
    await tab1.getByTestId('api-keys').waitFor()
    await shot(tab1, 'api-keys')
    const me = await api('GET', '/users/me', undefined, { 'x-api-key': shown! })
    t.equal(me.status, 200, 'the shown key works')
    await tab1.getByRole('button', { name: 'Done' }).click()
    t.equal(await tab1.getByTestId('created-key').count(), 0, 'and is not shown again')
    await tab1.getByRole('button', { name: 'Revoke key ci key' }).click()
    await tab1.getByText('You have no API keys.').waitFor()
    t.equal((await api('GET', '/users/me', undefined, { 'x-api-key': shown! })).status, 401, 'revoked')
  })

  await t.test('the API keys page pages: 101 keys (expired ones are listed, not counted) in two pages', async (t) => {
    const bulk = Array.from({ length: 101 }, (_, i) => ({
      userId: adminId,
      name: `bulk ${String(i).padStart(3, '0')}`,
      prefix: 'tak_bulk0000',
      keyHash: randomBytes(32),
      scopes: ['profile'],
      expiresAt: new Date(Date.now() - 1000),
      createdAt: new Date(Date.now() - 60_000 + i),
    }))
    await app.db.apiKey.createMany({ data: bulk })
    t.teardown(() => app.db.apiKey.updateMany({ where: { userId: adminId, revokedAt: null }, data: { revokedAt: new Date() } }))
    // Away and back, so the page loads the list again.
    await tab1.getByRole('link', { name: 'Users' }).click()
    await tab1.getByTestId('users').waitFor()
    await tab1.getByRole('link', { name: 'API keys' }).click()
    await tab1.getByTestId('api-keys').waitFor()
    t.equal(await tab1.getByTestId('api-keys').locator('tbody tr').count(), 100, 'the first page: 100 keys')
    t.equal(await tab1.getByRole('link', { name: 'First page' }).count(), 0)
    await tab1.getByRole('link', { name: 'Next page' }).click()
    await tab1.getByRole('link', { name: 'First page' }).waitFor()
    t.same(await tab1.getByTestId('api-keys').locator('tbody tr td:first-child').allTextContents(), ['bulk 000'], 'the second page: the oldest key')
    t.equal(await tab1.getByRole('link', { name: 'Next page' }).count(), 0, 'and no further page')
    await shot(tab1, 'api-keys-page-2')
  })

  await t.test('a reload keeps the admin signed in through the cookie', async (t) => {
    await tab1.goto(`${origin}/dashboard/#/users`)
    await tab1.reload()
    await tab1.getByTestId('users').waitFor()
    t.equal(await tab1.getByRole('button', { name: 'Sign in', exact: true }).count(), 0)
  })

  const tab2 = watch(await context.newPage())

  await t.test('two tabs refresh at the same moment and both stay signed in', async (t) => {
    await tab2.goto(`${origin}/dashboard/#/users`)
    await tab2.getByTestId('users').waitFor()
    // "The same moment", made deterministic: a third holder takes the
    // dashboard's refresh lock, both tabs ask for a refresh (four calls in
    // all), and the lock is released once both tabs are queued on it.
    const lock = 'token-auth:same-origin:admin:refresh'
    await tab1.evaluate(`void navigator.locks.request(${JSON.stringify(lock)}, () => new Promise((release) => { globalThis.releaseRefreshLock = release }))`)
    await tab1.waitForFunction('typeof globalThis.releaseRefreshLock === "function"')
    const before = tokenRequests
    // Two calls per tab, made in one evaluation so that both are in flight
    // together (two separate evaluations may reach the page after the first
    // refresh is over, and then rightly refresh again).
    const refreshTwice = (page: import('playwright-core').Page) =>
      page.evaluate(
        'Promise.all([0, 1].map(() => globalThis.tokenAuthDashboard.client.refresh().then((token) => token.length > 0)))'
      ) as Promise<boolean[]>
    const results = Promise.all([refreshTwice(tab1), refreshTwice(tab2)]).then((pairs) => pairs.flat())
    // Both tabs queued, told apart by clientId: two calls of one tab would also make two pending requests.
    await tab1.waitForFunction(
      `navigator.locks.query().then((state) => new Set(state.pending.filter((l) => l.name === ${JSON.stringify(lock)}).map((l) => l.clientId)).size === 2)`
    )
    await tab1.evaluate('globalThis.releaseRefreshLock()')
    t.same(await results, [true, true, true, true])
    const refreshes = tokenRequests - before
    t.equal(refreshes, 1, 'one refresh request for both tabs')
    t.comment(`refresh requests for two tabs refreshing at once: ${refreshes}`)
    for (const page of [tab1, tab2]) {
      await page.getByRole('link', { name: 'Audit events' }).first().click()
      await page.getByTestId('audit-events').waitFor()
      await page.getByRole('link', { name: 'Users' }).click()
      await page.getByTestId('users').waitFor()
    }
    t.pass('both tabs still signed in')
  })

  await t.test('logout in one tab signs the other out', async (t) => {
    await tab1.getByRole('button', { name: 'Sign out' }).click()
    await tab1.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    await tab2.getByTestId('login-notice').waitFor()
    t.match(await tab2.getByTestId('login-notice').textContent(), /signed out in another tab/)
    await shot(tab2, 'signed-out-elsewhere')
    await tab2.reload()
    await tab2.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    t.pass('a reload does not sign back in: the cookie is gone')
  })

  await t.test('a session that ends sends the admin back to login with a message', async (t) => {
    await login(tab1, adminEmail)
    await tab1.getByTestId('users').waitFor()
    // Revoke the admin's own sessions behind the dashboard's back.
    await app.administration.revokeSessions({ actorId: adminId, userId: adminId })
    await tab1.getByRole('link', { name: 'Audit events' }).first().click()
    await tab1.getByTestId('login-notice').waitFor()
    t.match(await tab1.getByTestId('login-notice').textContent(), /session has expired/)
    await shot(tab1, 'session-expired')
  })

  t.same(problems, [], 'no page errors or CSP violations')
}
