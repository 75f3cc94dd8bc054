import { Secret, TOTP } from 'otpauth'
import t, { type Test } from 'tap'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../../src/shared/authentication-methods.js'
import { appsOn, fileTestApp, json } from '../../helpers/app.js'
import { advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, totpCode } from '../../helpers/totp.js'
import { claimsOf, injectAs, login, passwordGrant, PASSWORD, signup, type Response } from '../../helpers/users.js'

/**
 * The signed-in user's second factors (DESIGN §3.12): TOTP enrolment and
 * confirmation, the list, recovery codes, removal.
 */

const main = await fileTestApp()
const { app } = main
const appOn = appsOn(main.database)

const start = (token: string) => injectAs(app, token, 'POST', '/users/me/mfa/totp')
const confirm = (token: string, code: string) => injectAs(app, token, 'POST', '/users/me/mfa/totp/confirm', { code })
const list = (token: string) => injectAs(app, token, 'GET', '/users/me/mfa')

/**
 * Adding a factor to an account that has one needs that factor proven in the
 * session: a password-only token is refused with 401 and the RFC 9470
 * challenge naming the mfa level.
 */
function assertNeedsFactorProof (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 401, `${label}: ${response.body}`)
  t.equal(json(response).code, 'insufficient_user_authentication', label)
  t.match(response.headers['www-authenticate'], `acr_values="${ACR_MFA}"`, `${label}: the challenge asks for the mfa level`)
}

/** A step-up of the session with a TOTP code of the next time step (the current one may be spent): its access token asserts acr mfa. */
async function stepUpWithTotp (t: Test, refreshToken: string, secret: string): Promise<string> {
  await advance(main, 30)
  await centreStep(main)
  const response = await app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: `${GRANT_TYPE_PREFIX}step-up`, refresh_token: refreshToken, otp: totpCode(secret, main.clock.now()) },
  })
  t.equal(response.statusCode, 200, `step-up: ${response.body}`)
  const accessToken = json<{ access_token: string }>(response).access_token
  t.equal(claimsOf(accessToken).acr, ACR_MFA, 'the stepped-up token asserts mfa')
  return accessToken
}

t.test('enrolment: a base32 secret, its otpauth URI and a QR code; nothing is active until confirmed', async (t) => {
  const user = await signup(app, { label: 'enrol' })
  const response = await start(user.access_token)
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = json<{ secret: string; otpauth_uri: string; qr_code: string }>(response)
  t.match(body.secret, /^[A-Z2-7]{32}$/, '160 bits in base32')
  const uri = new URL(body.otpauth_uri)
  t.equal(uri.protocol, 'otpauth:')
  t.equal(uri.host, 'totp')
  t.equal(decodeURIComponent(uri.pathname), `/${main.config.mfa.totpIssuer}:${user.email}`, 'label: issuer and the account\'s email')
  t.equal(uri.searchParams.get('issuer'), main.config.mfa.totpIssuer)
  t.equal(uri.searchParams.get('secret'), body.secret)
  t.equal(uri.searchParams.get('digits'), '6')
  t.equal(uri.searchParams.get('period'), '30')
  t.match(body.qr_code, /^data:image\/svg\+xml;base64,/)
  t.match(Buffer.from(body.qr_code.split(',')[1]!, 'base64').toString(), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)

  t.same(json(await list(user.access_token)), { totp: { confirmed: false, createdAt: json<{ totp: { createdAt: string } }>(await list(user.access_token)).totp.createdAt, confirmedAt: null }, recoveryCodes: { remaining: 0 } })
  t.equal((await passwordGrant(app, user.email)).statusCode, 200, 'a pending enrolment asks for no second step')
})

t.test('confirm: a code computed from the secret activates it and answers ten readable recovery codes, once', async (t) => {
  const user = await signup(app, { label: 'confirm' })
  const { secret } = json<{ secret: string }>(await start(user.access_token))
  await centreStep(main)
  const wrong = totpCode(secret, main.clock.now()) === '123456' ? '654321' : '123456'
  const refused = await confirm(user.access_token, wrong)
  t.equal(refused.statusCode, 400)
  t.equal(json(refused).code, 'invalid_otp')
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'second_factor_failed' } }), 1, 'the failure is audited')

  // An authenticator app (here otpauth's own generator, as an app would) shows the code.
  const appCode = new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: main.clock.now() })
  t.equal(appCode, totpCode(secret, main.clock.now()), 'the test\'s RFC 6238 agrees with an app')
  const response = await confirm(user.access_token, `${appCode.slice(0, 3)} ${appCode.slice(3)}`)
  t.equal(response.statusCode, 200, response.body)
  const { recoveryCodes } = json<{ recoveryCodes: string[] }>(response)
  t.equal(recoveryCodes.length, 10)
  t.equal(new Set(recoveryCodes).size, 10)
  for (const code of recoveryCodes) t.match(code, /^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$/, 'no 0, 1, O, I, L, U')

  const listed = json<{ totp: { confirmed: boolean; confirmedAt: string }; recoveryCodes: { remaining: number } }>(await list(user.access_token))
  t.equal(listed.totp.confirmed, true)
  t.type(listed.totp.confirmedAt, 'string')
  t.equal(listed.recoveryCodes.remaining, 10)
  t.notMatch(JSON.stringify(listed), recoveryCodes[0]!, 'the codes are never shown again')
  const notices = await app.db.emailOutbox.findMany({ where: { recipient: user.email, template: 'credential_added' } })
  t.equal(notices.length, 1, 'the address is told of the new authenticator')
  t.match(notices[0]?.data, { credential: 'authenticator app' })

  assertNeedsFactorProof(t, await confirm(user.access_token, appCode), 'with the password alone, once a factor is active')
  const stepped = await stepUpWithTotp(t, user.refresh_token, secret)
  const again = await confirm(stepped, appCode)
  t.equal(again.statusCode, 409, 'already active')
  t.equal(json(again).code, 'totp_already_enabled')
  t.equal(json(await passwordGrant(app, user.email)).error, 'mfa_required')
  t.ok(await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'totp_enabled' } }))
})

t.test('the confirming code cannot log in again: its step is spent', async (t) => {
  const user = await signup(app, { label: 'confirm-replay' })
  const { secret } = json<{ secret: string }>(await start(user.access_token))
  await centreStep(main)
  const code = totpCode(secret, main.clock.now())
  t.equal((await confirm(user.access_token, code)).statusCode, 200)
  const replay = await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: code })
  t.equal(replay.statusCode, 400)
  t.equal(json(replay).error, 'invalid_grant')
})

t.test('a new enrolment replaces a pending one; an active factor must be removed first (409)', async (t) => {
  const user = await signup(app, { label: 'restart' })
  const first = json<{ secret: string }>(await start(user.access_token)).secret
  const second = json<{ secret: string }>(await start(user.access_token)).secret
  t.not(first, second)
  t.equal(await app.db.totpFactor.count({ where: { userId: user.id } }), 1)
  await centreStep(main)
  t.equal((await confirm(user.access_token, totpCode(first, main.clock.now()))).statusCode, 400, 'the replaced secret is void')
  t.equal((await confirm(user.access_token, totpCode(second, main.clock.now()))).statusCode, 200)
  assertNeedsFactorProof(t, await start(user.access_token), 'a password-only token once a factor is active')
  const third = await start(await stepUpWithTotp(t, user.refresh_token, second))
  t.equal(third.statusCode, 409)
  t.equal(json(third).code, 'totp_already_enabled')
})

t.test('a pending enrolment lasts an hour', async (t) => {
  const target = await appOn(t)
  const user = await signup(target.app, { label: 'stale' })
  const { secret } = json<{ secret: string }>(await injectAs(target.app, user.access_token, 'POST', '/users/me/mfa/totp'))
  await advance(target, 3601)
  // The token is older than the access-token lifetime now: sign in again.
  const fresh = await login(target.app, user.email)
  await centreStep(target)
  const response = await injectAs(target.app, fresh.access_token, 'POST', '/users/me/mfa/totp/confirm', { code: totpCode(secret, target.clock.now()) })
  t.equal(response.statusCode, 404)
  t.equal(json(response).code, 'totp_not_enrolled')
  t.ok((await target.app.retention.runPass()).pendingTotpEnrolments! >= 1)
  t.equal(await target.app.db.totpFactor.count({ where: { userId: user.id } }), 0, 'retention deleted it')
})

t.test('confirm without a pending enrolment: 404', async (t) => {
  const user = await signup(app, { label: 'nothing' })
  const response = await confirm(user.access_token, '123456')
  t.equal(response.statusCode, 404)
  t.equal(json(response).code, 'totp_not_enrolled')
})

t.test('removal with a current code: the factor and its recovery codes go, no session is revoked', async (t) => {
  const user = await signup(app, { label: 'remove-code' })
  await centreStep(main)
  const { secret } = await enrolTotp(app, user.access_token, main.clock.now())
  await advance(main, 30)
  const other = await login(app, user.email, { password: PASSWORD }).catch(() => null)
  t.equal(other, null, 'the password alone no longer logs in')
  const wrong = await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', { code: totpCode(secret, main.clock.now(), -1) })
  t.equal(wrong.statusCode, 403, 'a code of a spent step is wrong')
  t.equal(json(wrong).code, 'invalid_credentials')
  const response = await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', { code: totpCode(secret, main.clock.now()) })
  t.equal(response.statusCode, 204, response.body)
  t.same(json(await list(user.access_token)), { totp: null, recoveryCodes: { remaining: 0 } })
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 0)
  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: { not: null } } }), 0, 'no session revoked')
  t.equal((await passwordGrant(app, user.email)).statusCode, 200, 'the password alone logs in again')
  const events = (await app.db.auditEvent.findMany({ where: { userId: user.id, type: { in: ['totp_removed', 'totp_removal_failed'] } }, orderBy: { id: 'asc' } })).map((e) => e.type)
  t.same(events, ['totp_removal_failed', 'totp_removed'])
})

t.test('removal with the password; a wrong password is refused and audited', async (t) => {
  const user = await signup(app, { label: 'remove-password' })
  await centreStep(main)
  await enrolTotp(app, user.access_token, main.clock.now())
  const wrong = await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', { password: 'not the passphrase' })
  t.equal(wrong.statusCode, 403)
  t.equal((await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', { password: PASSWORD })).statusCode, 204)
  t.equal((await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', { password: PASSWORD })).statusCode, 404, 'nothing left to remove')
  const bad = await injectAs(app, user.access_token, 'DELETE', '/users/me/mfa/totp', {})
  t.equal(bad.statusCode, 400, 'a body with neither proof')
})

t.test('removal and new recovery codes need a recent authentication', async (t) => {
  const target = await appOn(t, { ACCESS_TOKEN_TTL_SECONDS: '3600' })
  const user = await signup(target.app, { label: 'recent' })
  await centreStep(target)
  await enrolTotp(target.app, user.access_token, target.clock.now())
  await advance(target, main.config.mfa.recentAuthMaxAgeSeconds + 30)
  for (const [method, url, body] of [['DELETE', '/users/me/mfa/totp', { password: PASSWORD }], ['POST', '/users/me/mfa/recovery-codes', undefined]] as const) {
    const response = await injectAs(target.app, user.access_token, method, url, body)
    t.equal(response.statusCode, 401, url)
    t.equal(json(response).code, 'insufficient_user_authentication', url)
    t.match(response.headers['www-authenticate'], /max_age=/)
  }
  t.equal(await target.app.db.totpFactor.count({ where: { userId: user.id } }), 1, 'nothing removed')
})

t.test('new recovery codes replace the whole set', async (t) => {
  const user = await signup(app, { label: 'regenerate' })
  const none = await injectAs(app, user.access_token, 'POST', '/users/me/mfa/recovery-codes')
  t.equal(none.statusCode, 404, 'no factor, no codes')
  await centreStep(main)
  const { recoveryCodes: old } = await enrolTotp(app, user.access_token, main.clock.now())
  const response = await injectAs(app, user.access_token, 'POST', '/users/me/mfa/recovery-codes')
  t.equal(response.statusCode, 200)
  const { recoveryCodes } = json<{ recoveryCodes: string[] }>(response)
  t.equal(recoveryCodes.length, 10)
  t.equal(recoveryCodes.filter((c) => old.includes(c)).length, 0)
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 10)
  const stale = await mfaOtpGrant(app, await mfaToken(app, user.email), { recovery_code: old[0]! })
  t.equal(stale.statusCode, 400, 'an old code no longer works')
  t.equal((await mfaOtpGrant(app, await mfaToken(app, user.email), { recovery_code: recoveryCodes[0]! })).statusCode, 200)
  t.ok(await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'recovery_codes_regenerated' } }))
})

t.test('every route needs a signed-in user', async (t) => {
  for (const [method, url] of [['GET', '/users/me/mfa'], ['POST', '/users/me/mfa/totp'], ['POST', '/users/me/mfa/totp/confirm'], ['DELETE', '/users/me/mfa/totp'], ['POST', '/users/me/mfa/recovery-codes']] as const) {
    const response = await app.inject({ method, url, payload: url.endsWith('confirm') ? { code: '123456' } : method === 'DELETE' ? { password: PASSWORD } : {} })
    t.equal(response.statusCode, 401, `${method} ${url}`)
  }
})
