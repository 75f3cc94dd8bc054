import type { Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, launchBrowser } from '../helpers/browser.js'

/**
 * The dashboard's step-up prompt in headless Chromium: an admin write made
 * long after sign-in is refused with insufficient_user_authentication; the
 * dashboard asks the admin to confirm, steps up inside the same session,
 * and retries the write.
 */

const PASSWORD = 'a fine passphrase'
const MAX_AGE = 600

await browserTest('the dashboard steps up for a write after an old sign-in', run)

async function run (t: Test) {
  const server = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: '', RECENT_AUTH_MAX_AGE_SECONDS: String(MAX_AGE) }))
  t.teardown(server.close)
  const { app, issuer: origin, clock } = server
  const signUp = async (email: string) => {
    const response = await app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD, client_id: 'mobile' } })
    return response.json().user.id as string
  }
  const stamp = Date.now()
  const adminEmail = `stepup-admin-${stamp}@e2e.test`
  const adminId = await signUp(adminEmail)
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  const targetId = await signUp(`stepup-target-${stamp}@e2e.test`)

  const context = await launchBrowser(t, 'step-up')
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(error.message))
  await page.goto(`${origin}/dashboard/`)
  await page.getByLabel('Email').fill(adminEmail)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.getByRole('link', { name: 'Users' }).waitFor()

  await page.goto(`${origin}/dashboard/#/users/${targetId}`)
  await page.getByRole('button', { name: 'Disable user' }).waitFor()
  clock.advance(MAX_AGE + 60)
  await app.revocations.sync()

  await page.getByRole('button', { name: 'Disable user' }).click()
  const dialog = page.getByTestId('step-up')
  await dialog.waitFor()
  t.match(await dialog.textContent(), /recent/, 'the dialog says why')
  t.equal((await app.db.user.findUnique({ where: { id: targetId } }))?.disabled, false, 'not written before the step-up')

  await page.getByLabel('Confirm with').selectOption('password')
  await dialog.locator('input[name="step-up-secret"]').fill('not the password')
  await page.getByRole('button', { name: 'Confirm' }).click()
  await dialog.getByRole('alert').waitFor()
  t.match(await dialog.getByRole('alert').textContent(), /not accepted/, 'a wrong password: said so, the dialog stays')

  await dialog.locator('input[name="step-up-secret"]').fill(PASSWORD)
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.getByRole('button', { name: 'Enable user' }).waitFor()
  t.equal((await app.db.user.findUnique({ where: { id: targetId } }))?.disabled, true, 'the write went through after the step-up')
  t.equal(await app.db.auditEvent.count({ where: { userId: adminId, type: 'stepped_up' } }), 1, 'one step-up, audited')
  t.equal(await app.db.session.count({ where: { userId: adminId, clientId: 'admin' } }), 1, 'inside the same session')
  t.same(problems, [], 'no page errors')
}
