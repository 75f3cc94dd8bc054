import t from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import { TestSmtpServer } from '../../helpers/smtp.js'
import { advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, totpCode } from '../../helpers/totp.js'
import { claimsOf, injectAs, login, passwordGrant, signup, signupAdmin } from '../../helpers/users.js'

/**
 * Second factors and the admins (DESIGN §3.12): an admin's reset of a
 * user's factors (audited, the user emailed through the outbox and a real
 * SMTP server), and REQUIRE_MFA_FOR_ADMINS: an admin without a factor may
 * only enrol one, then signs in with the second step and gets the acr.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())
const main = await fileTestApp({ SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25' })
const { app } = main

const reset = (token: string, userId: string) => injectAs(app, token, 'POST', `/admin/users/${userId}/mfa/reset`)

t.test("an admin resets a user's second factors: gone, audited with the actor, the user emailed", async (t) => {
  const admin = await signupAdmin(app)
  const user = await signup(app, { label: 'lost-phone' })
  await centreStep(main)
  await enrolTotp(app, user.access_token, main.clock.now())
  await mfaToken(app, user.email)
  // A passkey on the lost phone too (the row as a registration leaves it).
  await app.db.passkey.create({
    data: { userId: user.id, credentialId: 'lost-phone-credential', publicKey: new Uint8Array(77), deviceType: 'singleDevice', backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000', name: 'phone' },
  })

  const response = await reset(admin.access_token, user.id)
  t.equal(response.statusCode, 200, response.body)
  t.same(json(response), { removed: { totp: 1, recovery_codes: 10, passkeys: 1 } })
  t.equal(await app.db.passkey.count({ where: { userId: user.id } }), 0, 'passkeys are removed with the other factors')
  t.equal(await app.db.totpFactor.count({ where: { userId: user.id } }), 0)
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 0)
  t.equal(await app.db.mfaToken.count({ where: { userId: user.id } }), 0, 'a pending second step is void too')
  t.equal((await passwordGrant(app, user.email)).statusCode, 200, 'the password alone signs in')
  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: { not: null } } }), 0, 'sessions stay')

  const event = await app.db.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'second_factors_reset' } })
  t.equal(event.actorId, admin.id)
  t.match(event.details, { removed: { totp: 1, recovery_codes: 10 } })

  const mail = await smtp.nextWithSubject(user.email, 'second factors')
  t.match(mail.text, /administrator just removed every second factor/)
  t.match(mail.text, user.email)
  t.match(mail.html, /<p>An administrator just removed/)
})

t.test('the reset needs an admin, a recent authentication, and a user that exists', async (t) => {
  const user = await signup(app, { label: 'reset-guard' })
  const notAdmin = await reset(user.access_token, user.id)
  t.equal(notAdmin.statusCode, 403)
  const target = await buildTestApp({}, { database: main.database })
  t.teardown(target.close)
  const admin = await signupAdmin(target.app)
  const missing = await injectAs(target.app, admin.access_token, 'POST', '/admin/users/00000000-0000-4000-8000-000000000000/mfa/reset')
  t.equal(missing.statusCode, 404)
  await advance(target, target.config.mfa.recentAuthMaxAgeSeconds + 30)
  const stale = await injectAs(target.app, admin.access_token, 'POST', `/admin/users/${user.id}/mfa/reset`)
  t.equal(stale.statusCode, 401)
  t.equal(json(stale).code, 'insufficient_user_authentication')
})

t.test('REQUIRE_MFA_FOR_ADMINS: an admin without a factor can only enrol; after enrolling, the second step gives the acr', async (t) => {
  const strict = await buildTestApp({ REQUIRE_MFA_FOR_ADMINS: 'true' }, { database: main.database })
  t.teardown(strict.close)
  const account = await signup(strict.app, { label: 'strict-admin' })
  await strict.app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
  await strict.app.revocations.sync()
  const first = await login(strict.app, account.email)
  t.equal(claimsOf(first.access_token).acr, undefined)

  const refused = await injectAs(strict.app, first.access_token, 'GET', '/admin/users')
  t.equal(refused.statusCode, 401)
  t.equal(json(refused).code, 'insufficient_user_authentication')
  t.match(refused.headers['www-authenticate'], /acr_values="urn:token-auth:acr:mfa"/)
  t.equal((await injectAs(strict.app, first.access_token, 'GET', '/users/me/mfa')).statusCode, 200, 'the list is open to them')

  await centreStep(strict)
  const enrolled = await enrolTotp(strict.app, first.access_token, strict.clock.now())
  t.equal((await injectAs(strict.app, first.access_token, 'GET', '/admin/users')).statusCode, 401, 'the old token still has no second factor')

  await advance(strict, 30)
  const token = await mfaToken(strict.app, account.email, { clientId: 'admin', headers: { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' } })
  const second = await mfaOtpGrant(strict.app, token, { otp: totpCode(enrolled.secret, strict.clock.now()) }, { clientId: 'admin', headers: { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' } })
  t.equal(second.statusCode, 200, second.body)
  const access = json<{ access_token: string }>(second).access_token
  t.equal(claimsOf(access).acr, 'urn:token-auth:acr:mfa')
  t.equal((await injectAs(strict.app, access, 'GET', '/admin/users?limit=1')).statusCode, 200, 'the admin API is open now')

  const user = await signup(strict.app, { label: 'strict-user' })
  t.equal((await injectAs(strict.app, user.access_token, 'GET', '/users/me')).statusCode, 200, 'ordinary users are not held to it')
})
