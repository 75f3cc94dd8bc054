import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { createApiKey, login, signup, signupAdmin, type Tokens } from '../../helpers/users.js'

/**
 * POST /auth/introspect (RFC 7662, DESIGN §3.7): only a caller with an API key
 * holding the `introspect` scope may ask; access tokens, refresh tokens and
 * API keys are described while usable, and anything else (revoked, retired,
 * expired, disabled, garbage) is exactly `{active: false}`. Also RFC 7009
 * revocation of an API key by its value.
 */

const main = await fileTestApp()
const { app, database } = main

type App = TestApp['app']
type Response = Awaited<ReturnType<App['inject']>>

/** The mobile client, named as these tests have always sent it. */
const MOBILE = { clientId: 'mobile' }

function createKey (target: App, accessToken: string, scopes: string[], expiresAt?: string) {
  return createApiKey(target, accessToken, { name: 'key', scopes, ...(expiresAt ? { expiresAt } : {}) })
}

/** An admin's API key with the introspect scope: what a platform service calls with. */
async function introspectionKey (target: App): Promise<string> {
  const admin = await signupAdmin(target, {}, MOBILE)
  return (await createKey(target, admin.access_token, ['introspect'])).key
}

const callerKey = await introspectionKey(app)

function introspect (
  target: App,
  token: string,
  options: { headers?: Record<string, string>; form?: boolean } = {}
): Promise<Response> {
  const headers = options.headers ?? { authorization: `Bearer ${callerKey}` }
  if (options.form) {
    return target.inject({
      method: 'POST',
      url: '/auth/introspect',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token }).toString(),
    })
  }
  return target.inject({ method: 'POST', url: '/auth/introspect', headers, payload: { token } })
}

function assertInactive (t: Test, response: Response, message: string) {
  t.equal(response.statusCode, 200, `${message}: 200 (${response.body})`)
  t.same(json(response), { active: false }, `${message}: exactly {active: false}`)
  t.strictSame(Object.keys(json(response)), ['active'], `${message}: no other member`)
  t.equal(response.headers['cache-control'], 'no-store', `${message}: no-store`)
}

function assertActive (t: Test, response: Response, message: string): Record<string, unknown> {
  t.equal(response.statusCode, 200, `${message}: 200 (${response.body})`)
  t.equal(response.headers['cache-control'], 'no-store', `${message}: no-store`)
  const body = json(response)
  t.equal(body.active, true, `${message}: active`)
  return body
}

function assertOAuthError (t: Test, response: Response, status: number, error: string, message: string) {
  t.equal(response.statusCode, status, `${message}: ${status} (${response.body})`)
  const body = json(response)
  t.same(Object.keys(body).sort(), ['error', 'error_description'], `${message}: RFC 6749 error shape`)
  t.equal(body.error, error, `${message}: ${error}`)
  t.equal(response.headers['cache-control'], 'no-store')
}

t.test('the caller must present an API key with the introspect scope', async (t) => {
  const user = await signup(app)
  const token = user.access_token

  const anonymous = await introspect(app, token, { headers: {} })
  t.equal(anonymous.statusCode, 401, 'no credentials: 401')
  t.match(anonymous.headers['www-authenticate'], /^Bearer/, 'with a challenge')
  t.equal((await introspect(app, token, { headers: {}, form: true })).statusCode, 401, 'no credentials, form body: 401')

  const withAccessToken = await introspect(app, token, { headers: { authorization: `Bearer ${token}` } })
  assertOAuthError(t, withAccessToken, 403, 'insufficient_scope', "a user's access token (no introspect scope)")
  t.match(withAccessToken.headers['www-authenticate'], /error="insufficient_scope"/)
  t.match(withAccessToken.headers['www-authenticate'], /scope="introspect"/)

  const profileKey = await createKey(app, token, ['profile'])
  for (const headers of [{ authorization: `Bearer ${profileKey.key}` }, { 'x-api-key': profileKey.key }] as Record<string, string>[]) {
    const response = await introspect(app, token, { headers })
    assertOAuthError(t, response, 403, 'insufficient_scope', `a key without introspect (${Object.keys(headers)[0]})`)
  }

  const bogus = await introspect(app, token, { headers: { authorization: 'Bearer tak_notakey' } })
  t.equal(bogus.statusCode, 401, 'a malformed key: 401')
  t.equal((await introspect(app, token, { headers: { 'x-api-key': 'garbage' } })).statusCode, 401, 'garbage X-API-Key: 401')

  const viaHeader = await introspect(app, token, { headers: { 'x-api-key': callerKey } })
  assertActive(t, viaHeader, 'the introspect key in X-API-Key')
})

t.test("an admin's introspect key stops working when the admin is demoted or disabled", async (t) => {
  const admin = await signupAdmin(app, {}, MOBILE)
  const key = (await createKey(app, admin.access_token, ['introspect'])).key
  const target = (await signup(app)).access_token
  assertActive(t, await introspect(app, target, { headers: { 'x-api-key': key } }), 'while an admin')

  await app.db.user.update({ where: { id: admin.id }, data: { role: 'user', authChangedAt: new Date() } })
  const demoted = await introspect(app, target, { headers: { 'x-api-key': key } })
  t.equal(demoted.statusCode, 403, `demoted: 403, the scope only an admin may grant has no force without the role (${demoted.body})`)
  t.not(json(demoted).active, true, 'and no introspection answer')

  await app.db.user.update({ where: { id: admin.id }, data: { role: 'admin', disabled: true, authChangedAt: new Date() } })
  t.equal((await introspect(app, target, { headers: { 'x-api-key': key } })).statusCode, 401, 'disabled: 401')
  await app.db.user.update({ where: { id: admin.id }, data: { disabled: false, authChangedAt: new Date() } })
  assertActive(t, await introspect(app, target, { headers: { 'x-api-key': key } }), 'an admin again')
})

t.test('JSON and form bodies; an active access token is described', async (t) => {
  const user = await signup(app)
  const tokens = await login(app, user.email, MOBILE)
  const claims = decodeJwt(tokens.access_token)
  for (const form of [false, true]) {
    const body = assertActive(t, await introspect(app, tokens.access_token, { form }), form ? 'form body' : 'JSON body')
    t.match(body, {
      active: true,
      token_type: 'access_token',
      sub: user.id,
      scope: 'profile',
      exp: claims.exp,
      iat: claims.iat,
      sid: claims.sid,
      client_id: 'mobile',
      iss: app.config.issuer,
    })
    t.type(body.exp, 'number')
    t.ok((body.exp as number) > Date.now() / 1000, 'exp in the future')
  }
  const missing = await app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: `Bearer ${callerKey}` }, payload: {} })
  assertOAuthError(t, missing, 400, 'invalid_request', 'no token parameter')
})

t.test('refresh tokens: live is active, retired is not', async (t) => {
  const user = await signup(app)
  const tokens = await login(app, user.email, MOBILE)
  const sid = decodeJwt(tokens.access_token).sid
  const live = assertActive(t, await introspect(app, tokens.refresh_token), 'a live refresh token')
  t.match(live, { token_type: 'refresh_token', sub: user.id, scope: 'profile', sid, client_id: 'mobile' })
  t.type(live.exp, 'number')
  t.ok((live.exp as number) > Date.now() / 1000)
  t.equal(live.iss, undefined, 'refresh tokens are not JWTs')
  assertActive(t, await introspect(app, tokens.refresh_token, { form: true }), 'form body')

  const rotated = await app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'mobile' },
  })
  t.equal(rotated.statusCode, 200)
  const successor = json<Tokens>(rotated).refresh_token
  assertInactive(t, await introspect(app, tokens.refresh_token), 'the retired refresh token')
  t.match(assertActive(t, await introspect(app, successor), 'its successor'), { token_type: 'refresh_token', sid })
})

t.test('API keys: a live key is active with its scopes; a revoked one is not', async (t) => {
  const user = await signup(app)
  const expiresAt = new Date(Date.now() + 3600_000)
  const key = await createKey(app, user.access_token, ['profile'], expiresAt.toISOString())
  const body = assertActive(t, await introspect(app, key.key), 'a live key')
  t.match(body, { token_type: 'api_key', sub: user.id, scope: 'profile', exp: Math.floor(expiresAt.getTime() / 1000) })
  t.notOk('sid' in body, 'a key has no session')

  const forever = await createKey(app, user.access_token, ['profile'])
  const foreverBody = assertActive(t, await introspect(app, forever.key, { form: true }), 'a key without expiry, form body')
  t.equal(foreverBody.exp, undefined, 'no exp for a key that does not expire')

  t.equal(
    (await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: { authorization: `Bearer ${user.access_token}` } })).statusCode,
    204
  )
  assertInactive(t, await introspect(app, key.key), 'a revoked key')
})

t.test("a revoked session's access token is inactive at once", async (t) => {
  const user = await signup(app)
  const tokens = await login(app, user.email, MOBILE)
  assertActive(t, await introspect(app, tokens.access_token), 'before logout')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal(logout.statusCode, 204)
  assertInactive(t, await introspect(app, tokens.access_token), 'the access token after logout')
  assertInactive(t, await introspect(app, tokens.refresh_token), 'the refresh token after logout')
  assertActive(t, await introspect(app, user.access_token), 'the signup session is untouched')
})

t.test("a disabled user's tokens and keys are inactive; a role change retires older access tokens", async (t) => {
  const user = await signup(app)
  const tokens = await login(app, user.email, MOBILE)
  const key = await createKey(app, tokens.access_token, ['profile'])
  for (const token of [tokens.access_token, tokens.refresh_token, key.key]) assertActive(t, await introspect(app, token), 'before')

  await app.db.user.update({ where: { id: user.id }, data: { disabled: true, authChangedAt: new Date() } })
  assertInactive(t, await introspect(app, tokens.access_token), 'access token of a disabled user')
  assertInactive(t, await introspect(app, tokens.refresh_token), 'refresh token of a disabled user')
  assertInactive(t, await introspect(app, key.key), 'API key of a disabled user')

  const other = await signup(app)
  assertActive(t, await introspect(app, other.access_token), 'before the role change')
  await app.db.user.update({ where: { id: other.id }, data: { role: 'admin', authChangedAt: new Date() } })
  assertInactive(t, await introspect(app, other.access_token), 'an access token naming the old role')
})

t.test('garbage is inactive, never an error', async (t) => {
  const user = await signup(app)
  const [header, payload] = user.access_token.split('.')
  const garbage = [
    'garbage',
    '',
    'a.b.c',
    `${header}.${payload}.AAAA`,
    'tak_0000000000000000000000000000000000000000000000000',
    `tak_${'x'.repeat(49)}`,
    'A'.repeat(43),
    'A'.repeat(92),
    '%00\u0000\u202e',
    'x'.repeat(4096),
  ]
  for (const token of garbage) {
    assertInactive(t, await introspect(app, token), `token ${JSON.stringify(token.slice(0, 30))}`)
  }
  assertInactive(t, await introspect(app, 'not a token', { form: true }), 'form body')
  const tooLong = await introspect(app, 'x'.repeat(5000))
  t.equal(tooLong.statusCode, 400, 'an oversized token is a bad request, not a 500')
})

t.test('expired access tokens, refresh tokens and API keys are inactive', async (t) => {
  const built = await buildTestApp({}, { database })
  t.teardown(built.close)
  const { app, clock } = built
  const user = await signup(app)
  const tokens = await login(app, user.email, MOBILE)
  const key = await createKey(app, tokens.access_token, ['profile'], new Date(clock.now() + 3600_000).toISOString())
  for (const token of [tokens.access_token, tokens.refresh_token, key.key]) assertActive(t, await introspect(app, token), 'before')

  clock.advance(app.config.clients.mobile!.accessTokenTtlSeconds + 1)
  assertInactive(t, await introspect(app, tokens.access_token), 'an expired access token')
  assertActive(t, await introspect(app, tokens.refresh_token), 'the refresh token lives on')
  assertActive(t, await introspect(app, key.key), 'the key lives on')

  clock.advance(3600)
  assertInactive(t, await introspect(app, key.key), 'an expired key')

  clock.advance(app.config.clients.mobile!.refreshIdleTtlSeconds)
  assertInactive(t, await introspect(app, tokens.refresh_token), 'an idle-expired refresh token')
})

t.test('POST /auth/revoke with an API key revokes it, with an audit event', async (t) => {
  const user = await signup(app)
  const key = await createKey(app, user.access_token, ['profile'])
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-api-key': key.key } })).statusCode, 200)

  const response = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: key.key, token_type_hint: 'api_key' } })
  t.equal(response.statusCode, 200, response.body)
  t.same(json(response), {})
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-api-key': key.key } })).statusCode, 401, 'the key is dead')
  assertInactive(t, await introspect(app, key.key), 'the revoked key')
  const row = await app.db.apiKey.findUniqueOrThrow({ where: { id: key.id } })
  t.ok(row.revokedAt, 'revokedAt is set')

  const events = await app.db.auditEvent.findMany({ where: { type: 'api_key_revoked', userId: user.id } })
  t.equal(events.length, 1, 'one api_key_revoked event')
  // Whoever holds a key may revoke it here: the event names no actor rather than the owner (security review finding 8).
  t.match(events[0], { userId: user.id, actorId: null, details: { apiKeyId: key.id, via: 'revocation_endpoint' } })
  t.notOk(JSON.stringify(events[0]?.details).includes(key.key), 'without the key')

  const again = await app.inject({
    method: 'POST',
    url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: key.key }).toString(),
  })
  t.equal(again.statusCode, 200, 'revoking again: 200 (form body)')
  t.equal(await app.db.auditEvent.count({ where: { type: 'api_key_revoked', userId: user.id } }), 1, 'no second event')
  const unknown = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: `tak_${'1'.repeat(49)}` } })
  t.equal(unknown.statusCode, 200, 'an unknown key: 200 all the same')
})
