import { decodeJwt } from 'jose'
import t from 'tap'
import { buildTestApp, json, type TestApp } from '../../helpers/app.js'
import { pkcePair } from '../../helpers/oauth.js'
import { centreStep, enrolTotp, totpCode } from '../../helpers/totp.js'
import { injectAs, PASSWORD, signup, uniqueEmail } from '../../helpers/users.js'

/**
 * POST /oauth/authorize-challenge (draft-ietf-oauth-first-party-apps-04,
 * DESIGN §3.16): the draft's flows end to end, and the password grant's
 * guarantees on the new endpoint. The service runs as shipped, with the
 * password grant off.
 */

const service: TestApp = await buildTestApp({ PASSWORD_GRANT: 'disabled' })
t.teardown(() => service.close())
const { app } = service

type Fields = Record<string, string>
const form = (fields: Fields) => new URLSearchParams(fields).toString()

function challenge (fields: Fields, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/oauth/authorize-challenge', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: form(fields) })
}
function token (fields: Fields, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: form(fields) })
}

/** A flow's first request for the mobile client (body transport). */
function start (pkce: { challenge: string }, extra: Fields) {
  return challenge({ client_id: 'mobile', response_type: 'code', scope: 'openid', code_challenge: pkce.challenge, code_challenge_method: 'S256', ...extra })
}

t.test('password: the code, exchanged with PKCE and no redirect_uri, gives a session like any other', async (t) => {
  const user = await signup(app)
  const pkce = pkcePair()
  const answer = await start(pkce, { username: user.email, password: PASSWORD })
  t.equal(answer.statusCode, 200)
  t.equal(answer.headers['cache-control'], 'no-store')
  const code = json<{ authorization_code: string }>(answer).authorization_code
  const wrongVerifier = await token({ grant_type: 'authorization_code', client_id: 'mobile', code, code_verifier: pkcePair().verifier })
  t.equal(json(wrongVerifier).error, 'invalid_grant', 'another verifier: refused, and the code is spent')
  const again = json<{ authorization_code: string }>(await start(pkce, { username: user.email, password: PASSWORD })).authorization_code
  const exchanged = await token({ grant_type: 'authorization_code', client_id: 'mobile', code: again, code_verifier: pkce.verifier })
  t.equal(exchanged.statusCode, 200)
  const body = json<Record<string, string>>(exchanged)
  t.ok(body.refresh_token, 'a first-party client gets a refresh token')
  t.ok(body.id_token, 'openid: an ID token')
  const claims = decodeJwt(body.access_token!)
  t.equal(claims.sub, user.id)
  t.same(claims.amr, ['pwd'])
  const refreshed = await token({ grant_type: 'refresh_token', client_id: 'mobile', refresh_token: body.refresh_token! })
  t.equal(refreshed.statusCode, 200, 'the session rotates as every session does')
})

t.test('a wrong password and an unknown address answer the same invalid_grant', async (t) => {
  const user = await signup(app)
  const pkce = pkcePair()
  const wrong = await start(pkce, { username: user.email, password: 'not the password' })
  const unknown = await start(pkce, { username: uniqueEmail('nobody'), password: 'not the password' })
  t.equal(wrong.statusCode, 400)
  t.equal(json(wrong).error, 'invalid_grant')
  t.equal(unknown.body, wrong.body, 'the same body')
})

t.test('second factor: insufficient_authorization with auth_session; a wrong code keeps it; the right one ends the flow with the code', async (t) => {
  const user = await signup(app)
  await centreStep(service)
  const { secret } = await enrolTotp(app, user.access_token, service.clock.now())
  service.clock.advance(30)
  await centreStep(service)
  const pkce = pkcePair()
  const first = await start(pkce, { username: user.email, password: PASSWORD })
  t.equal(first.statusCode, 403)
  const step = json<{ error: string; auth_session: string; factors: string[] }>(first)
  t.equal(step.error, 'insufficient_authorization')
  t.same(step.factors, ['otp', 'recovery_code'])
  const other = pkcePair()
  const mismatched = await challenge({ client_id: 'mobile', auth_session: step.auth_session, otp: totpCode(secret, service.clock.now()), code_challenge: other.challenge })
  t.equal(json(mismatched).error, 'invalid_request', `a step naming another code_challenge is refused (${mismatched.body})`)
  const wrongCode = totpCode(secret, service.clock.now()) === '000000' ? '111111' : '000000'
  const wrong = await challenge({ client_id: 'mobile', auth_session: step.auth_session, otp: wrongCode })
  t.equal(json(wrong).error, 'invalid_grant')
  const web = await challenge({ client_id: 'web', auth_session: step.auth_session, otp: totpCode(secret, service.clock.now()) }, { origin: 'http://auth.test', 'x-requested-with': 'fetch' })
  t.equal(json(web).error, 'invalid_session', 'bound to its client')
  const done = await challenge({ client_id: 'mobile', auth_session: step.auth_session, otp: totpCode(secret, service.clock.now()) })
  t.equal(done.statusCode, 200)
  const code = json<{ authorization_code: string }>(done).authorization_code
  const spent = await challenge({ client_id: 'mobile', auth_session: step.auth_session, otp: totpCode(secret, service.clock.now()) })
  t.equal(json(spent).error, 'invalid_session', 'the flow ended with its code')
  const exchanged = await token({ grant_type: 'authorization_code', client_id: 'mobile', code, code_verifier: pkce.verifier })
  t.equal(exchanged.statusCode, 200)
  const claims = decodeJwt(json<{ access_token: string }>(exchanged).access_token)
  t.ok((claims.amr as string[]).includes('mfa'))
  t.equal(claims.acr, 'urn:token-auth:acr:mfa')
})

t.test('a password change between the code and its exchange ends the sign-in', async (t) => {
  const user = await signup(app)
  const pkce = pkcePair()
  const code = json<{ authorization_code: string }>(await start(pkce, { username: user.email, password: PASSWORD })).authorization_code
  const changed = await injectAs(app, user.access_token, 'POST', '/users/me/password', { currentPassword: PASSWORD, newPassword: 'another fine passphrase' })
  t.equal(changed.statusCode, 204)
  const exchanged = await token({ grant_type: 'authorization_code', client_id: 'mobile', code, code_verifier: pkce.verifier })
  t.equal(exchanged.statusCode, 400)
  t.equal(json(exchanged).error, 'invalid_grant')
})

t.test('first-party clients only; PKCE required; cookie transport needs the CSRF defence', async (t) => {
  // Registered through the domain: the admin API needs an admin's session, which a password grant would give.
  const { client: thirdParty } = await app.clients.create({ client_name: 'x', redirect_uris: ['https://x.example/cb'], token_endpoint_auth_method: 'none' }, { id: (await signup(app)).id })
  const user = await signup(app)
  const pkce = pkcePair()
  const refused = await challenge({ client_id: thirdParty.id, response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD })
  t.equal(json(refused).error, 'unauthorized_client')
  const noPkce = await challenge({ client_id: 'mobile', username: user.email, password: PASSWORD })
  t.equal(json(noPkce).error, 'invalid_request')
  const plain = await challenge({ client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'plain', username: user.email, password: PASSWORD })
  t.equal(json(plain).error, 'invalid_request')
  const crossSite = await challenge({ client_id: 'web', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD }, { origin: 'https://evil.example' })
  t.equal(crossSite.statusCode, 403)
  t.equal(json(crossSite).error, 'invalid_request', 'login CSRF: a cross-site form cannot start a cookie-transport sign-in (csrf_check_failed, answered as RFC 6749\'s invalid_request)')
  const sameSite = await challenge({ client_id: 'web', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD }, { origin: 'http://spa.test', 'x-requested-with': 'fetch' })
  t.equal(sameSite.statusCode, 200)
  const exchanged = await token({ grant_type: 'authorization_code', client_id: 'web', code: json<{ authorization_code: string }>(sameSite).authorization_code, code_verifier: pkce.verifier }, { origin: 'http://spa.test', 'x-requested-with': 'fetch' })
  t.equal(exchanged.statusCode, 200)
  t.notOk('refresh_token' in json(exchanged), 'cookie transport: not in the body')
  t.match(String(exchanged.headers['set-cookie']), /__Secure-refresh_token=/)
})

t.test('PASSWORD_GRANT=disabled: the password grant and its family are unknown, and the metadata lists the challenge endpoint instead', async (t) => {
  const user = await signup(app)
  for (const grantType of ['password', 'urn:token-auth:grant-type:mfa-otp', 'urn:token-auth:grant-type:passkey']) {
    const answer = await token({ grant_type: grantType, username: user.email, password: PASSWORD })
    t.equal(json(answer).error, 'unsupported_grant_type', grantType)
  }
  for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
    const metadata = json<{ grant_types_supported: string[]; authorization_challenge_endpoint: string }>(await app.inject({ method: 'GET', url: path }))
    t.notOk(metadata.grant_types_supported.includes('password'), `${path}: no password grant`)
    t.notOk(metadata.grant_types_supported.some((type) => type.startsWith('urn:token-auth:grant-type:mfa-otp')), `${path}: no mfa-otp grant`)
    t.equal(metadata.authorization_challenge_endpoint, 'http://auth.test/oauth/authorize-challenge')
  }
})

t.test('an auth_session cannot be finished at the legacy mfa-otp grant, which would skip its PKCE binding', async (t) => {
  const legacy = await buildTestApp({ PASSWORD_GRANT: 'enabled' }, { database: service.database, clock: service.clock })
  t.teardown(() => legacy.close())
  const user = await signup(legacy.app)
  await centreStep(legacy)
  const { secret } = await enrolTotp(legacy.app, user.access_token, legacy.clock.now())
  legacy.clock.advance(30)
  await centreStep(legacy)
  const pkce = pkcePair()
  const step = json<{ auth_session: string }>(await legacy.app.inject({
    method: 'POST',
    url: '/oauth/authorize-challenge',
    payload: { client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD },
  }))
  const grant = await legacy.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'urn:token-auth:grant-type:mfa-otp', client_id: 'mobile', mfa_token: step.auth_session, otp: totpCode(secret, legacy.clock.now()) } })
  t.equal(grant.statusCode, 400)
  t.equal(json(grant).error, 'invalid_grant')
  const done = await legacy.app.inject({ method: 'POST', url: '/oauth/authorize-challenge', payload: { client_id: 'mobile', auth_session: step.auth_session, otp: totpCode(secret, legacy.clock.now()) } })
  t.equal(done.statusCode, 200, 'the flow still finishes where it belongs')
})

t.test('draft §5.1: a first request names its client and response_type=code', async (t) => {
  const user = await signup(app)
  const pkce = pkcePair()
  const noClient = await challenge({ response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD })
  t.equal(json(noClient).error, 'invalid_request', 'no default client here')
  const noResponseType = await challenge({ client_id: 'mobile', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD })
  t.equal(json(noResponseType).error, 'invalid_request')
  const token = await challenge({ client_id: 'mobile', response_type: 'token', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD })
  t.equal(json(token).error, 'invalid_request')
})
