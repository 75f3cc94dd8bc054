import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, watchPage } from '../helpers/browser.js'

/**
 * Recovery in the browser (DESIGN §3.11), in headless Chromium as
 * test/e2e/dashboard.test.ts drives it: with no SMTP_URL, an admin sends a
 * user a reset link from the user's page, finds it in the dashboard's
 * development mailbox, and the link's page (opening it spends nothing)
 * sets the new password; the sign-up's verification link is clicked through
 * the same way. Screenshots go to .tap/e2e-screenshots/recovery-*.png.
 */

const SCREENSHOTS = join(PROJECT_ROOT, '.tap', 'e2e-screenshots')
const PASSWORD = 'a fine passphrase'
const NEW_PASSWORD = 'a newly chosen passphrase'

await browserTest('password reset and email verification through the dashboard\'s mailbox', run)

async function run (t: Test) {
  const server = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: '' }))
  t.teardown(server.close)
  const { app, issuer: origin } = server
  t.equal(app.mailDelivery, null, 'no SMTP_URL: the development mailbox')

  const signUp = async (email: string) => {
    const response = await fetch(`${origin}/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    if (response.status !== 201) throw new Error(`signup ${email}: ${response.status}`)
    return ((await response.json()) as { user: { id: string } }).user.id
  }
  const passwordGrant = async (email: string, password: string) =>
    (await fetch(`${origin}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: email, password }) })).status

  const stamp = Date.now()
  const adminEmail = `admin-${stamp}@e2e.test`
  const adminId = await signUp(adminEmail)
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  const userEmail = `forgetful-${stamp}@e2e.test`
  const userId = await signUp(userEmail)

  await mkdir(SCREENSHOTS, { recursive: true })
  const context = await launchBrowser(t, 'recovery')
  const problems: string[] = []
  const page = context.pages()[0] ?? (await context.newPage())
  watchPage(page, problems)
  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `recovery-${name}.png`), fullPage: true })

  /** Opens the mailbox and follows the link of the newest message to `to` whose subject matches. */
  async function followMailboxLink (to: string, subject: RegExp) {
    await page.goto(`${origin}/dashboard/#/mailbox`)
    const row = page.locator(`[data-testid=outbox] tr[data-recipient="${to}"]`).filter({ hasText: subject }).first()
    await row.locator('summary').click()
    await shot(`mailbox-${subject.source.replace(/\W+/g, '-')}`)
    await row.locator('pre.mail a').first().click()
  }

  await t.test('the admin signs in and sees the user unverified', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    await page.getByLabel('Email').fill(adminEmail)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByTestId('users').waitFor()
    await page.goto(`${origin}/dashboard/#/users/${userId}`)
    t.equal(await page.getByTestId('user-verified').textContent(), 'not verified')
  })

  await t.test('the sign-up\'s verification link, from the mailbox', async (t) => {
    await followMailboxLink(userEmail, /confirm your email address/)
    await page.getByRole('button', { name: 'Confirm my address' }).waitFor()
    t.notMatch(await page.evaluate('location.hash'), /token/, 'the token left the address bar')
    t.equal((await app.db.user.findUniqueOrThrow({ where: { id: userId } })).emailVerifiedAt, null, 'opening the page spent nothing')
    await shot('verify-page')
    await page.getByRole('button', { name: 'Confirm my address' }).click()
    await page.getByTestId('verify-done').waitFor()
    t.match(await page.getByTestId('verify-done').textContent(), `${userEmail} is confirmed`)
    await page.goto(`${origin}/dashboard/#/users/${userId}`)
    await page.getByTestId('user-verified').waitFor()
    t.match(await page.getByTestId('user-verified').textContent(), /^verified /, 'the user page shows it')
  })

  await t.test('the admin sends a reset; the user sets a new password through the link', async (t) => {
    await page.getByRole('button', { name: 'Send password reset email' }).click()
    await page.getByTestId('reset-sent').waitFor()
    await shot('user-reset-sent')
    await followMailboxLink(userEmail, /reset your password/)
    await page.locator('input[name=new-password]').waitFor()
    t.notMatch(await page.evaluate('location.hash'), /token/, 'the token left the address bar')
    const token = await app.db.accountToken.findFirstOrThrow({ where: { userId, purpose: 'password_reset' } })
    t.equal(token.usedAt, null, 'opening the page spent nothing')
    await shot('reset-page')

    await page.locator('input[name=new-password]').fill('password123')
    await page.locator('input[name=repeat-password]').fill('password123')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByTestId('reset-error').waitFor()
    t.match(await page.getByTestId('reset-error').textContent(), /too common/, 'a weak password is refused, the link kept')

    await page.locator('input[name=new-password]').fill(NEW_PASSWORD)
    await page.locator('input[name=repeat-password]').fill(NEW_PASSWORD)
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.getByTestId('reset-done').waitFor()
    await shot('reset-done')
    t.equal(await passwordGrant(userEmail, NEW_PASSWORD), 200, 'the new password works')
    t.equal(await passwordGrant(userEmail, PASSWORD), 400, 'the old one does not')
  })

  await t.test('the forgot-password link of the login page asks for a link', async (t) => {
    await context.clearCookies()
    await page.goto(`${origin}/dashboard/#/reset-password`)
    await page.reload()
    await page.locator('input[name=email]').fill(userEmail)
    await page.getByRole('button', { name: 'Email me a reset link' }).click()
    await page.getByTestId('reset-requested').waitFor()
    await app.recovery.settled()
    t.equal(await app.db.emailOutbox.count({ where: { recipient: userEmail, template: 'password_reset' } }), 2, 'a second reset message queued')
  })

  t.same(problems, [], 'no CSP violation or page error')
}
