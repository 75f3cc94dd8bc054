import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ApiRequestError, AuthClient, EmailNotVerifiedError, MemoryStore } from '../../src/client/index.js'
import { buildTestApp } from '../helpers/app.js'
import { linkToken, TestSmtpServer } from '../helpers/smtp.js'
import { createApiKey } from '../helpers/users.js'
import { registerPasskey, SoftAuthenticator, TEST_ORIGIN } from '../helpers/webauthn.js'

/**
 * The SDK's recovery and email methods against the service on a real socket
 * and a real SMTP server: every flow as an app would run it.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())
const server = await buildTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25', REQUIRE_EMAIL_VERIFICATION: 'true' })
t.teardown(() => server.close())
await server.app.listen({ host: '127.0.0.1', port: 0 })
const baseUrl = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`
const newClient = () => new AuthClient({ baseUrl, clientId: 'mobile', transport: 'body', store: new MemoryStore() })

const PASSWORD = 'a fine passphrase'
const email = `sdk-${Date.now()}@recovery.test`

/** The token of the newest message to `to` with `subject` in its subject. */
async function linkOf (to: string, subject: string): Promise<string> {
  await smtp.nextWithSubject(to, subject)
  return linkToken(smtp.to(to).filter((mail) => mail.subject.includes(subject)).at(-1)!)
}

t.test('sign-up, EmailNotVerifiedError, resend, verify, then login', async (t) => {
  const client = newClient()
  const user = await client.signUp(email, PASSWORD)
  t.equal(user.emailVerifiedAt, null)
  await linkOf(email, 'confirm your email')
  await client.resendVerification()
  await smtp.waitFor(() => smtp.to(email).filter((mail) => mail.subject.includes('confirm your email')).length === 2)
  const token = await linkOf(email, 'confirm your email')
  await t.rejects(newClient().login(email, PASSWORD), EmailNotVerifiedError, 'an unverified address has its own error')
  t.same(await newClient().verifyEmail(token), { purpose: 'email_verification', email })
  await t.rejects(client.resendVerification(), { code: 'email_already_verified' })
  t.ok(await newClient().login(email, PASSWORD), 'verified: signed in')
})

t.test('password reset', async (t) => {
  const client = newClient()
  await client.requestPasswordReset(email)
  const token = await linkOf(email, 'reset your password')
  await t.rejects(client.confirmPasswordReset(token, 'password123'), { code: 'weak_password' })
  await client.confirmPasswordReset(token, 'a reset passphrase')
  const reused = client.confirmPasswordReset(token, 'another reset passphrase')
  await t.rejects(reused, ApiRequestError)
  await t.rejects(reused, { code: 'invalid_link_token' })
  t.ok(await newClient().login(email, 'a reset passphrase'))
})

t.test('email change', async (t) => {
  const client = newClient()
  await client.login(email, 'a reset passphrase')
  const moved = `moved-${Date.now()}@recovery.test`
  await t.rejects(client.changeEmail(moved, 'wrong password here'), { code: 'invalid_credentials' })
  await client.changeEmail(moved, 'a reset passphrase')
  t.same(await newClient().verifyEmail(await linkOf(moved, 'new email address')), { purpose: 'email_change', email: moved })
  t.match(await client.request('/users/me'), { email: moved })
})

t.test('the password-change notice\'s link removes the passkeys and API keys it lists', async (t) => {
  const client = newClient()
  const owner = `sdk-removal-${Date.now()}@recovery.test`
  await client.signUp(owner, PASSWORD)
  await newClient().verifyEmail(await linkOf(owner, 'confirm your email'))
  // Added after the address was confirmed: what a password change lists. The key first: beside a passkey it would need a step-up.
  const key = await createApiKey(server.app, await client.getAccessToken(), { name: 'Planted key', scopes: ['profile'] })
  const passkey = await registerPasskey(server.app, await client.getAccessToken(), new SoftAuthenticator(TEST_ORIGIN), 'Planted passkey')

  await client.requestPasswordReset(owner)
  await client.confirmPasswordReset(await linkOf(owner, 'reset your password'), 'a reset passphrase')
  await smtp.nextWithSubject(owner, 'your password was changed')
  const notice = smtp.to(owner).filter((mail) => mail.subject.includes('your password was changed')).at(-1)!
  t.match(notice.text, /Planted passkey/, 'the notice lists the passkey')
  t.match(notice.text, /#\/remove-credentials\?token=/, 'and links to the removal page')
  const token = linkToken(notice)

  await t.rejects(newClient().removeListedCredentials('not-a-real-token'), ApiRequestError, 'a made-up token')
  t.same(await newClient().removeListedCredentials(token), { passkeys: 1, apiKeys: 1 })
  t.equal(await server.app.db.passkey.count({ where: { id: passkey.id } }), 0, 'the passkey is gone')
  t.ok((await server.app.db.apiKey.findUniqueOrThrow({ where: { id: key.id } })).revokedAt, 'the key is revoked')
  await t.rejects(newClient().removeListedCredentials(token), { name: 'ApiRequestError', code: 'invalid_link_token' }, 'the link works once')
})
