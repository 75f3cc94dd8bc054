import t from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import { linkToken, TestSmtpServer, type ReceivedMail } from '../../helpers/smtp.js'
import { injectAs, me, PASSWORD, passwordGrant, signup, signupRequest, uniqueEmail } from '../../helpers/users.js'

/**
 * Email verification (DESIGN §3.11): the link sign-up sends, its POST, the
 * resend, and REQUIRE_EMAIL_VERIFICATION on the password grant.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())
const { app, database } = await fileTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25' })

const verify = (token: string) => app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token } })
const resend = (accessToken: string) => injectAs(app, accessToken, 'POST', '/auth/verify-email/resend')
const verificationMails = (email: string): ReceivedMail[] => smtp.to(email).filter((mail) => mail.subject.includes('confirm your email'))
const nextVerification = async (email: string, already = 0): Promise<string> => linkToken(await smtp.nextWithSubject(email, 'confirm your email', already))

t.test('sign-up sends a verification link; its POST verifies the address once', async (t) => {
  const user = await signup(app, { label: 'verify' })
  t.equal(json(await me(app, user.access_token)).emailVerifiedAt, null, 'unverified at first')
  const token = await nextVerification(user.email)
  const mail = verificationMails(user.email)[0]!
  t.match(mail.text, /#\/verify-email\?token=/, 'the dashboard\'s verification page, the secret in the fragment')
  t.match(mail.text, 'within 24 hours', 'EMAIL_VERIFY_TTL_SECONDS, a day by default')

  const answer = await verify(token)
  t.equal(answer.statusCode, 200)
  t.same(json(answer), { purpose: 'email_verification', email: user.email })
  const verifiedAt = json(await me(app, user.access_token)).emailVerifiedAt
  t.type(verifiedAt, 'string', `GET /users/me shows it at once: ${String(verifiedAt)}`)

  const again = await verify(token)
  t.equal(again.statusCode, 400)
  t.match(json(again), { code: 'invalid_link_token', message: /already used/ })
  t.equal(json(await resend(user.access_token)).code, 'email_already_verified', 'nothing left to verify')
  const event = await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'email_verified' } })
  t.ok(event, 'audited')
})

t.test('a resend replaces the earlier link', async (t) => {
  const user = await signup(app, { label: 'resend' })
  const first = await nextVerification(user.email)
  const answer = await resend(user.access_token)
  t.equal(answer.statusCode, 202)
  const second = await nextVerification(user.email, 1)
  t.not(first, second)
  t.equal(json(await verify(first)).code, 'invalid_link_token', 'the older link no longer works')
  t.equal((await verify(second)).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/auth/verify-email/resend' })).statusCode, 401, 'signed in only')
})

t.test('a link works only for its purpose', async (t) => {
  const user = await signup(app, { label: 'purpose' })
  const verification = await nextVerification(user.email)
  const asReset = await app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: verification, newPassword: 'a brand new passphrase' } })
  t.equal(asReset.statusCode, 400)
  t.equal(json(asReset).code, 'invalid_link_token', 'a verification link cannot reset a password')
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: user.email } })).statusCode, 202)
  const reset = linkToken(await smtp.nextWithSubject(user.email, 'reset'))
  t.equal(json(await verify(reset)).code, 'invalid_link_token', 'a reset link cannot verify an address')
  t.equal((await verify(verification)).statusCode, 200, 'the verification link still works')
})

t.test('a sign-up that fails queues nothing', async (t) => {
  const user = await signup(app, { label: 'taken' })
  await nextVerification(user.email)
  t.equal((await signupRequest(app, { email: user.email, password: PASSWORD })).statusCode, 409)
  t.equal(await app.db.emailOutbox.count({ where: { recipient: user.email } }), 1, 'only the first sign-up\'s message')
})

t.test('REQUIRE_EMAIL_VERIFICATION: the password grant refuses an unverified address with email_not_verified', async (t) => {
  const strict = await buildTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25', REQUIRE_EMAIL_VERIFICATION: 'true' }, { database })
  t.teardown(() => strict.close())
  const email = uniqueEmail('strict')
  const created = await signupRequest(strict.app, { email, password: PASSWORD })
  t.equal(created.statusCode, 201, 'sign-up still signs the new user in (DESIGN §3.3)')

  const refused = await passwordGrant(strict.app, email)
  t.equal(refused.statusCode, 400)
  t.match(json(refused), { error: 'email_not_verified', error_description: /confirm your email/ })
  t.equal(refused.headers['cache-control'], 'no-store')
  t.match(json(await passwordGrant(strict.app, email, { password: 'not the password at all' })), { error: 'invalid_grant' }, 'a wrong password says nothing about verification')
  t.match(json(await passwordGrant(strict.app, uniqueEmail('nobody'))), { error: 'invalid_grant' })

  t.equal((await verify(await nextVerification(email))).statusCode, 200)
  t.equal((await passwordGrant(strict.app, email)).statusCode, 200, 'verified: signed in')
})

t.test('a password reset verifies the address too (the way in for an unverified account)', async (t) => {
  const user = await signup(app, { label: 'reset-verifies' })
  await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: user.email } })
  const reset = linkToken(await smtp.nextWithSubject(user.email, 'reset'))
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token: reset, newPassword: 'a brand new passphrase' } })).statusCode, 204)
  const row = await app.db.user.findUniqueOrThrow({ where: { id: user.id } })
  t.ok(row.emailVerifiedAt, 'verified by the reset')
})
