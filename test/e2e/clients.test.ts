import type { Test } from 'tap'
import { browserTest, dashboardService, jsonApi, launchBrowser, watchPage } from '../helpers/browser.js'

const PASSWORD = 'a fine passphrase'

await browserTest('the dashboard\'s Clients page (create, secret shown once, edit, rotate, delete) and Apps with access, at 420 px', async (t: Test) => {
  const { app, origin } = await dashboardService(t)
  const api = jsonApi(origin)
  const stamp = Date.now()
  const adminEmail = `admin-${stamp}@e2e.test`
  const adminId = (await api('POST', '/auth/signup', { email: adminEmail, password: PASSWORD })).body.user.id as string
  await app.administration.updateUser({ actorId: adminId, userId: adminId, role: 'admin' })
  await app.db.user.update({ where: { id: adminId }, data: { emailVerifiedAt: new Date() } })
  const context = await launchBrowser(t, 'clients')
  const problems: string[] = []
  const page = watchPage(context.pages()[0] ?? (await context.newPage()), problems)
  page.on('dialog', (dialog) => { dialog.accept().catch(() => {}) })
  await page.goto(`${origin}/dashboard/`)
  await page.getByLabel('Email').fill(adminEmail)
  await page.getByLabel('Password').fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.getByTestId('users').waitFor()

  await page.getByRole('link', { name: 'Clients' }).click()
  await page.getByTestId('clients').waitFor()
  t.equal(await page.locator('[data-client-id=web] button', { hasText: 'Delete' }).count(), 0, 'no Delete for a configured client')
  await page.setViewportSize({ width: 420, height: 800 })
  await page.getByRole('button', { name: 'Register a client' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Partner app')
  await page.getByLabel('Redirect URIs', { exact: true }).fill('https://partner.test/callback\nhttps://partner.test/cb2')
  await page.getByLabel('Post-logout redirect URIs').fill('https://partner.test/')
  await page.getByRole('checkbox', { name: 'client_credentials' }).check()
  const widths = await page.evaluate('({ d: document.documentElement.scrollWidth, w: document.documentElement.clientWidth })') as { d: number; w: number }
  t.ok(widths.d <= widths.w, `form: no sideways scroll ${JSON.stringify(widths)}`)
  await page.getByRole('button', { name: 'Register client' }).click()
  await page.getByTestId('client-secret').waitFor()
  const secret = await page.locator('[data-testid=client-secret] code.secret').textContent()
  t.match(secret, /^tacs_/)
  t.match(await page.getByTestId('client-secret').textContent(), /Store this client secret now/)
  const widths2 = await page.evaluate('({ d: document.documentElement.scrollWidth, w: document.documentElement.clientWidth })') as { d: number; w: number }
  t.ok(widths2.d <= widths2.w, `list: no sideways scroll ${JSON.stringify(widths2)}`)
  await page.getByRole('button', { name: 'I have stored it' }).click()

  // Edit: the name and the type (public): client_credentials refused with a public type, so drop it first.
  await page.getByRole('button', { name: 'Edit Partner app' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Partner app 2')
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.getByTestId('clients-notice').waitFor()
  t.match(await page.getByTestId('clients-notice').textContent(), /Saved Partner app 2/)
  // Nothing changed
  await page.getByRole('button', { name: 'Edit Partner app 2' }).click()
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.getByText('Nothing changed.').waitFor()
  await page.getByRole('button', { name: 'Cancel' }).click()

  // Rotate
  await page.getByRole('button', { name: 'Rotate the secret of Partner app 2' }).click()
  await page.getByTestId('client-secret').waitFor()
  const rotated = await page.locator('[data-testid=client-secret] code.secret').textContent()
  t.not(rotated, secret)
  t.match(await page.getByTestId('client-secret').textContent(), /previous secret has stopped working/)
  await page.getByRole('button', { name: 'I have stored it' }).click()

  // Invalid redirect → error shown
  await page.getByRole('button', { name: 'Register a client' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Bad')
  await page.getByLabel('Redirect URIs', { exact: true }).fill('http://evil.test/cb')
  await page.getByRole('button', { name: 'Register client' }).click()
  await page.locator('.client-form .state.error').waitFor()
  t.comment(`error: ${await page.locator('.client-form .state.error').textContent()}`)
  await page.getByRole('button', { name: 'Cancel' }).click()

  // Grants: the admin consents to the partner app (through the domain), and the target too.
  const clients = await api('GET', '/admin/clients', undefined, {})
  t.comment(`unauth list: ${clients.status}`)
  const partner = (await app.db.oauthClient.findFirst({ where: { name: 'Partner app 2' } }))!
  await app.consents.grant(adminId, partner.id, ['openid', 'email'], undefined)
  await page.getByRole('link', { name: 'Apps with access' }).click()
  await page.getByTestId('grants').waitFor()
  t.match(await page.getByTestId('grants').textContent(), /Partner app 2/)
  await page.goto(`${origin}/dashboard/#/users/${adminId}`)
  await page.getByTestId('user-grants').waitFor()
  t.match(await page.getByTestId('user-grants').textContent(), /Partner app 2/)
  await page.getByRole('link', { name: 'Apps with access' }).click()
  await page.getByRole('button', { name: 'Revoke access of Partner app 2' }).click()
  await page.getByText('No app has access to your account.').waitFor()

  // Delete
  await page.getByRole('link', { name: 'Clients' }).click()
  await page.getByRole('button', { name: 'Delete Partner app 2' }).click()
  await page.getByTestId('clients-notice').waitFor()
  // The notice may be an earlier one still shown: the list has caught up when the row's own button is gone.
  await page.getByRole('button', { name: 'Delete Partner app 2' }).waitFor({ state: 'detached', timeout: 15_000 })
  t.equal(await page.locator('[data-testid=clients]', { hasText: 'Partner app 2' }).count(), 0)
  t.same(problems, [])
})
