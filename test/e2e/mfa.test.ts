import type { Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, jsonApi, launchBrowser, watchPage } from '../helpers/browser.js'
import { stepAt, totpCode } from '../helpers/totp.js'

/**
 * Second factors in the admin dashboard, in headless Chromium: an admin
 * without a factor under REQUIRE_MFA_FOR_ADMINS is sent to the Security
 * page, sets up an authenticator (the test reads the secret off the page and
 * computes the codes), sees the recovery codes once, signs out, signs in
 * with the second step, and resets another user's second factors.
 */

const PASSWORD = 'a fine passphrase'

await browserTest('second factors in the dashboard, in headless Chromium', run)

async function run (t: Test) {
  const server = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: '', REQUIRE_MFA_FOR_ADMINS: 'true' }))
  t.teardown(server.close)
  const { app, issuer: origin } = server

  const api = jsonApi(origin)
  const stamp = Date.now()
  const adminEmail = `mfa-admin-${stamp}@e2e.test`
  const admin = await api('POST', '/auth/signup', { email: adminEmail, password: PASSWORD })
  const adminId = admin.body.user.id as string
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  await app.revocations.sync()

  // A user with an authenticator, for the admin's reset.
  const targetEmail = `mfa-target-${stamp}@e2e.test`
  const target = await api('POST', '/auth/signup', { email: targetEmail, password: PASSWORD, client_id: 'mobile' })
  const auth = { authorization: `Bearer ${target.body.access_token as string}` }
  const { secret: targetSecret } = (await api('POST', '/users/me/mfa/totp', undefined, auth)).body
  t.equal((await api('POST', '/users/me/mfa/totp/confirm', { code: totpCode(targetSecret, Date.now()) }, auth)).status, 200)

  const context = await launchBrowser(t, 'e2e-mfa')
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin })
  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  watchPage(page, problems)
  page.on('dialog', (dialog) => {
    dialog.accept().catch(() => undefined)
  })
  if (process.env.DEBUG_E2E) {
    page.on('console', (message) => console.error('console', message.type(), message.text()))
    page.on('response', (response) => console.error('response', response.status(), response.request().method(), response.url()))
  }

  async function signIn (email: string) {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }

  let secret = ''
  let confirmedStep = 0
  await t.test('an admin without a second factor is sent to set one up', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    await signIn(adminEmail)
    await page.getByTestId('must-enrol').waitFor()
    if (process.env.DEBUG_E2E) console.error(await page.locator('main').innerText())
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click()
    secret = (await page.getByTestId('totp-secret').textContent()) ?? ''
    t.match(secret, /^[A-Z2-7]{32}$/, 'the secret is shown')
    const qr = page.getByAltText('QR code of the authenticator secret')
    t.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/, 'with its QR code')
    t.ok(await qr.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).complete && (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'the QR code renders under the CSP')
    await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()) === '000000' ? '000001' : '000000')
    await page.getByRole('button', { name: 'Turn on' }).click()
    await page.getByRole('alert').waitFor()
    confirmedStep = stepAt(Date.now())
    await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()))
    await page.getByRole('button', { name: 'Turn on' }).click()
    await page.getByTestId('recovery-codes').waitFor()
    const codes = await page.locator('[data-testid=recovery-codes] li code').allTextContents()
    t.equal(codes.length, 10, 'ten recovery codes')
    await page.getByRole('button', { name: 'Copy codes' }).click()
    await page.getByRole('button', { name: 'Copied' }).waitFor()
    t.equal(await page.evaluate<string>('navigator.clipboard.readText()'), codes.join('\n'), 'copied to the clipboard')
    await page.getByRole('button', { name: 'I have saved them' }).click()
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor()
    t.equal(await app.db.totpFactor.count({ where: { userId: adminId, confirmedAt: { not: null } } }), 1)
  })

  await t.test('signing in again asks for the second step; a code computed from the secret opens the dashboard', async (t) => {
    await signIn(adminEmail)
    await page.getByLabel('Authentication code').waitFor()
    await page.getByLabel('Authentication code').fill(totpCode(secret, Date.now(), 1) === '000000' ? '000001' : '000000')
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.getByTestId('second-step-error').waitFor()
    // The step after the one the confirmation spent: inside the window, and newer.
    await page.getByLabel('Authentication code').fill(totpCode(secret, (confirmedStep + 1) * 30_000))
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.getByTestId('users').waitFor()
    const claims = await page.evaluate<{ acr?: string; amr?: string[] }>('window.tokenAuthDashboard.client.claims')
    t.equal(claims.acr, 'urn:token-auth:acr:mfa')
    t.same(claims.amr, ['mfa', 'otp', 'pwd'])
    await page.getByRole('link', { name: 'Security' }).click()
    await page.getByTestId('totp-status').waitFor()
    t.match(await page.getByTestId('totp-status').textContent(), /Recovery codes left: 10/)
  })

  await t.test("an admin resets another user's second factors from the user page", async (t) => {
    await page.goto(`${origin}/dashboard/#/users/${target.body.user.id as string}`)
    await page.getByRole('button', { name: 'Reset second factors' }).click()
    await page.getByTestId('factors-reset').waitFor()
    t.match(await page.getByTestId('factors-reset').textContent(), /totp: 1, recovery_codes: 10/)
    t.equal(await app.db.totpFactor.count({ where: { userId: target.body.user.id as string } }), 0)
    t.same(problems, [], 'no CSP violation or page error')
  })
}
