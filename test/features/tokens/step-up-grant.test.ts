import t from 'tap'
import { ACR_MFA, GRANT_TYPE_PREFIX } from '../../../src/shared/authentication-methods.js'
import { buildTestApp, json } from '../../helpers/app.js'
import { advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, totpCode } from '../../helpers/totp.js'
import { registerPasskey, SoftAuthenticator, TEST_ORIGIN } from '../../helpers/webauthn.js'
import { claimsOf, injectAs, login, PASSWORD, refresh, sidOf, signup, signupAdmin, uniqueEmail } from '../../helpers/users.js'

/**
 * Step-up (DESIGN §3.12, RFC 9470): sensitive routes need a recent
 * authentication; a step-up grant re-checks a factor inside the live session
 * and issues a fresh access token for the same session; a refresh keeps the
 * session's authentication facts and never raises them.
 */

const STEP_UP = `${GRANT_TYPE_PREFIX}step-up`
const MAX_AGE = 900
const main = await buildTestApp({ RECENT_AUTH_MAX_AGE_SECONDS: String(MAX_AGE) })
const { app, clock } = main
t.teardown(main.close)

/** Moves the clock past the recent-authentication limit; the revocation list is synced as its timer would, so tokens are not answered 503. */
async function ageAuthentication (seconds = MAX_AGE + 60) {
  await advance(main, seconds)
}

const stepUp = (payload: Record<string, unknown>, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/token', headers, payload: { grant_type: STEP_UP, ...payload } })
const changePassword = (accessToken: string, newPassword = `${PASSWORD} changed ${Math.random()}`) =>
  injectAs(app, accessToken, 'POST', '/users/me/password', { currentPassword: PASSWORD, newPassword })

t.test('an old authentication is refused on a sensitive route with the RFC 9470 challenge; a step-up with the password lets it through', async (t) => {
  const user = await signup(app)
  const session = await login(app, user.email)
  const loginClaims = claimsOf(session.access_token)
  await ageAuthentication()

  // Still a valid token for ordinary routes.
  t.equal((await injectAs(app, session.access_token, 'GET', '/users/me')).statusCode, 200, 'GET /users/me: not sensitive')
  const refused = await changePassword(session.access_token)
  t.equal(refused.statusCode, 401, refused.body)
  t.equal(json(refused).code, 'insufficient_user_authentication')
  t.equal(
    refused.headers['www-authenticate'],
    `Bearer error="insufficient_user_authentication", error_description="this needs a recent authentication: sign in again or step up", max_age=${MAX_AGE}`
  )
  // A refresh does not help: it keeps the login's auth_time.
  const refreshed = json<{ access_token: string; refresh_token: string }>(await refresh(app, session.refresh_token))
  t.equal(claimsOf(refreshed.access_token).auth_time, loginClaims.auth_time, 'a refresh keeps auth_time')
  t.same(claimsOf(refreshed.access_token).amr, ['pwd'], 'and amr')
  t.equal(json(await changePassword(refreshed.access_token)).code, 'insufficient_user_authentication', 'the refreshed token is just as old')

  const sessionsBefore = await app.db.session.count({ where: { userId: user.id } })
  const stepped = await stepUp({ refresh_token: refreshed.refresh_token, password: PASSWORD })
  t.equal(stepped.statusCode, 200, stepped.body)
  const tokens = json<{ access_token: string; refresh_token: string }>(stepped)
  const claims = claimsOf(tokens.access_token)
  t.equal(claims.sid, session.sessionId, 'the same session')
  t.equal(await app.db.session.count({ where: { userId: user.id } }), sessionsBefore, 'no new session')
  t.ok(Math.abs(Number(claims.auth_time) - clock.now() / 1000) <= 2, 'auth_time: now')
  t.same(claims.amr, ['pwd'])
  t.notOk('acr' in claims, 'a password alone asserts no level')
  t.not(tokens.refresh_token, refreshed.refresh_token, 'the refresh token rotated')
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'stepped_up' } }), 1, 'audited')

  const changed = await changePassword(tokens.access_token)
  t.equal(changed.statusCode, 204, changed.body)

  // The raised facts are the session's: its next refresh keeps them.
  const later = json<{ access_token: string }>(await refresh(app, tokens.refresh_token))
  t.equal(claimsOf(later.access_token).auth_time, claims.auth_time, 'the next refresh keeps the stepped-up auth_time')
})

t.test('with a second factor: the password alone does not step up; a TOTP or recovery code does, and the session becomes mfa', async (t) => {
  const user = await signup(app)
  const enrolled = await enrolTotp(app, user.access_token, clock.now())
  const token = await mfaToken(app, user.email)
  const loggedIn = json<{ access_token: string; refresh_token: string }>(await mfaOtpGrant(app, token, { recovery_code: enrolled.recoveryCodes[0]! }))
  t.same(claimsOf(loggedIn.access_token).amr, ['mfa', 'otp', 'pwd'], 'a second-step login')
  t.equal(claimsOf(loggedIn.access_token).acr, ACR_MFA)
  await ageAuthentication()
  await centreStep(main)

  const password = await stepUp({ refresh_token: loggedIn.refresh_token, password: PASSWORD })
  t.equal(json(password).error, 'invalid_request', 'the password alone is refused')
  t.match(json(password).error_description, /second factor/)
  const wrong = await stepUp({ refresh_token: loggedIn.refresh_token, otp: totpCode(enrolled.secret, clock.now()) === '000000' ? '111111' : '000000' })
  t.equal(json(wrong).error, 'invalid_grant', 'a wrong code')
  const stepped = await stepUp({ refresh_token: loggedIn.refresh_token, otp: totpCode(enrolled.secret, clock.now()) })
  t.equal(stepped.statusCode, 200, stepped.body)
  const claims = claimsOf(json<{ access_token: string }>(stepped).access_token)
  t.same(claims.amr, ['mfa', 'otp', 'pwd'])
  t.equal(claims.acr, ACR_MFA, 'the level holds')
  t.ok(Math.abs(Number(claims.auth_time) - clock.now() / 1000) <= 2, 'and is recent again')
  t.equal(claims.sid, claimsOf(loggedIn.access_token).sid, 'same session')
  const replay = await stepUp({ refresh_token: json<{ refresh_token: string }>(stepped).refresh_token, otp: totpCode(enrolled.secret, clock.now()) })
  t.equal(json(replay).error, 'invalid_grant', 'the same code again: refused (its time step is spent)')
})

t.test('a password session of a user who enrols a factor later: stepping up with a code makes it mfa', async (t) => {
  const user = await signup(app)
  const enrolled = await enrolTotp(app, user.access_token, clock.now())
  t.same(claimsOf(user.access_token).amr, ['pwd'])
  await ageAuthentication(31) // the next time step
  await centreStep(main)
  const stepped = await stepUp({ refresh_token: user.refresh_token, otp: totpCode(enrolled.secret, clock.now()) })
  t.equal(stepped.statusCode, 200, stepped.body)
  const claims = claimsOf(json<{ access_token: string }>(stepped).access_token)
  t.same(claims.amr, ['mfa', 'otp', 'pwd'], 'the login\'s password and now a code')
  t.equal(claims.acr, ACR_MFA)
})

t.test('with a passkey: the step-up takes an assertion over a step-up challenge, and the session becomes mfa', async (t) => {
  const user = await signup(app)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(app, user.access_token, authenticator, 'laptop')
  await ageAuthentication()
  t.equal(json(await stepUp({ refresh_token: user.refresh_token, password: PASSWORD })).error, 'invalid_request', 'a passkey is a factor: the password alone is refused')

  const options = json<{ challenge: string; rpId: string }>(await injectAs(app, user.access_token, 'POST', '/users/me/passkeys/step-up-options'))
  const assertion = authenticator.get(options)
  const stepped = await stepUp({ refresh_token: user.refresh_token, credential: assertion })
  t.equal(stepped.statusCode, 200, stepped.body)
  const claims = claimsOf(json<{ access_token: string }>(stepped).access_token)
  t.same(claims.amr, ['hwk', 'mfa', 'pwd', 'user'], 'the login\'s password, and a device-bound key that verified its user')
  t.equal(claims.acr, ACR_MFA)
  t.equal(claims.sid, user.sessionId, 'same session')
  const again = await stepUp({ refresh_token: json<{ refresh_token: string }>(stepped).refresh_token, credential: assertion })
  t.equal(json(again).error, 'invalid_grant', 'the same assertion again: its challenge is spent')
  const form = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: STEP_UP, refresh_token: json<{ refresh_token: string }>(stepped).refresh_token, credential: '{"not": "an assertion"}' }).toString(),
  })
  t.equal(json(form).error, 'invalid_request', 'a credential that is no assertion: invalid_request')
})

t.test('a wrong password: invalid_grant, audited, nothing raised, the session still works', async (t) => {
  const user = await signup(app)
  await ageAuthentication()
  const wrong = await stepUp({ refresh_token: user.refresh_token, password: 'not the password' })
  t.equal(wrong.statusCode, 400)
  t.equal(json(wrong).error, 'invalid_grant')
  const event = await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'step_up_failed' } })
  t.match(event?.details, { reason: 'wrong_password', method: 'pwd', sessionId: user.sessionId })
  const refreshed = await refresh(app, user.refresh_token)
  t.equal(refreshed.statusCode, 200, 'the refresh token was not spent')
  t.equal(json(await changePassword(json<{ access_token: string }>(refreshed).access_token)).code, 'insufficient_user_authentication', 'still old')
})

t.test('step-up requests that name no live session of this client, or no single factor, are refused', async (t) => {
  const user = await signup(app)
  for (const [what, payload, code] of [
    ['no refresh token', { password: PASSWORD }, 'invalid_request'],
    ['no factor', { refresh_token: user.refresh_token }, 'invalid_request'],
    ['two factors', { refresh_token: user.refresh_token, password: PASSWORD, otp: '123456' }, 'invalid_request'],
    ['not a refresh token', { refresh_token: 'x'.repeat(92), password: PASSWORD }, 'invalid_grant'],
    ['another client\'s refresh token', { refresh_token: user.refresh_token, password: PASSWORD, client_id: 'web' }, 'invalid_grant'],
  ] as const) {
    const response = await stepUp({ ...payload }, what.includes('another client') ? { origin: 'http://spa.test', 'x-requested-with': 'fetch' } : {})
    t.ok(response.statusCode === 400 || response.statusCode === 401, `${what}: 4xx (${response.statusCode} ${response.body})`)
    if (response.statusCode === 400) t.equal(json(response).error, code, what)
  }
  const fine = await stepUp({ refresh_token: user.refresh_token, password: PASSWORD })
  t.equal(fine.statusCode, 200, 'the session was not harmed')
})

t.test('a retired refresh token used to step up is reuse: the session is revoked', async (t) => {
  const user = await signup(app)
  const rotated = json<{ refresh_token: string }>(await refresh(app, user.refresh_token))
  t.ok(rotated.refresh_token)
  await ageAuthentication(60) // past the grace window
  const reuse = await stepUp({ refresh_token: user.refresh_token, password: PASSWORD })
  t.equal(json(reuse).error, 'invalid_grant')
  const session = await app.db.session.findUnique({ where: { id: user.sessionId } })
  t.equal(session?.revokedReason, 'refresh_token_reused', 'the whole session is revoked, as on a refresh')
})

t.test('cookie transport: the step-up reads the refresh cookie and keeps its CSRF rules', async (t) => {
  const email = uniqueEmail('stepup-spa')
  await signup(app, { email })
  const spa = { origin: 'http://spa.test', 'x-requested-with': 'fetch' }
  const first = await app.inject({ method: 'POST', url: '/auth/token', headers: spa, payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'web' } })
  t.equal(first.statusCode, 200, first.body)
  const cookie = first.cookies.find((c) => c.name === '__Secure-refresh_token')!
  const cookieHeader = `${cookie.name}=${cookie.value}`
  const noCsrf = await stepUp({ client_id: 'web', password: PASSWORD }, { cookie: cookieHeader, origin: 'http://spa.test' })
  t.equal(noCsrf.statusCode, 403, 'without X-Requested-With: refused')
  const evil = await stepUp({ client_id: 'web', password: PASSWORD }, { cookie: cookieHeader, origin: 'http://evil.test', 'x-requested-with': 'fetch' })
  t.equal(evil.statusCode, 403, 'from another origin: refused')
  const ok = await stepUp({ client_id: 'web', password: PASSWORD }, { cookie: cookieHeader, ...spa })
  t.equal(ok.statusCode, 200, ok.body)
  t.notOk(json(ok).refresh_token, 'the refresh token stays in the cookie')
  t.ok(ok.cookies.find((c) => c.name === '__Secure-refresh_token' && c.value !== cookie.value), 'the rotated one is set')
  t.equal(sidOf(json<{ access_token: string }>(ok).access_token), sidOf(json<{ access_token: string }>(first).access_token), 'same session')
})

t.test('API-key creation and admin writes need a recent authentication; admin reads do not', async (t) => {
  const admin = await signupAdmin(app)
  const user = await signup(app)
  await ageAuthentication()
  const read = await injectAs(app, admin.access_token, 'GET', '/admin/users?limit=1')
  t.equal(read.statusCode, 200, 'a read with an old authentication')
  const write = await injectAs(app, admin.access_token, 'PATCH', `/admin/users/${user.id}`, { disabled: true })
  t.equal(write.statusCode, 401, write.body)
  t.equal(json(write).code, 'insufficient_user_authentication')
  const key = await injectAs(app, admin.access_token, 'POST', '/api-keys', { name: 'ci', scopes: ['profile'] })
  t.equal(json(key).code, 'insufficient_user_authentication', 'API-key creation')
  const email = await injectAs(app, admin.access_token, 'POST', '/users/me/email', { newEmail: uniqueEmail('new'), currentPassword: PASSWORD })
  t.equal(json(email).code, 'insufficient_user_authentication', 'email change')

  const stepped = json<{ access_token: string }>(await stepUp({ refresh_token: admin.refresh_token, password: PASSWORD }))
  t.equal((await injectAs(app, stepped.access_token, 'PATCH', `/admin/users/${user.id}`, { disabled: true })).statusCode, 200, 'after the step-up')
})

t.test('REQUIRE_MFA_FOR_ADMINS: an admin token without a second factor reaches only who-am-I, sessions, logout and enrolment', async (t) => {
  const strict = await buildTestApp({ REQUIRE_MFA_FOR_ADMINS: 'true' }, { database: main.database })
  t.teardown(strict.close)
  const account = await signup(strict.app)
  await strict.app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
  const tokens = await login(strict.app, account.email)
  t.equal(claimsOf(tokens.access_token).role, 'admin')
  let refused
  for (let started = Date.now(); Date.now() - started < 5_000;) {
    refused = await injectAs(strict.app, tokens.access_token, 'GET', '/admin/users?limit=1')
    if (json(refused).code === 'insufficient_user_authentication') break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(refused!.statusCode, 401, refused!.body)
  t.match(refused!.headers['www-authenticate'], `acr_values="${ACR_MFA}"`, 'the challenge asks for the mfa level')
  t.equal((await injectAs(strict.app, tokens.access_token, 'GET', '/users/me')).statusCode, 200, 'GET /users/me')
  t.equal((await injectAs(strict.app, tokens.access_token, 'GET', '/auth/sessions')).statusCode, 200, 'GET /auth/sessions')
  t.equal(json(await injectAs(strict.app, tokens.access_token, 'GET', '/api-keys')).code, 'insufficient_user_authentication', 'GET /api-keys')
  t.equal((await injectAs(strict.app, tokens.access_token, 'POST', '/auth/logout')).statusCode, 204, 'logout')

  const plainUser = await signup(strict.app)
  t.equal((await injectAs(strict.app, plainUser.access_token, 'GET', '/api-keys')).statusCode, 200, 'users are not affected')
})
