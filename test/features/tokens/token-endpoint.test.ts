import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { PASSWORD, signup, uniqueEmail } from '../../helpers/users.js'

/**
 * POST /auth/token, password grant (DESIGN §3.2, §3.4): JSON and form bodies,
 * the RFC 6749 token and error responses, clients, scopes and the access
 * token's header and claims.
 */

const main = await fileTestApp()
const { app, database } = main

function passwordGrant (target: TestApp['app'], params: Record<string, string>, headers: Record<string, string> = {}) {
  return target.inject({ method: 'POST', url: '/auth/token', headers, payload: { grant_type: 'password', ...params } })
}

function formGrant (target: TestApp['app'], params: Record<string, string>) {
  return target.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(params).toString(),
  })
}

interface TokenBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token?: string
  scope?: string
}

function assertTokenResponse (t: Test, response: Awaited<ReturnType<typeof passwordGrant>>): TokenBody {
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.headers['cache-control'], 'no-store', 'Cache-Control: no-store')
  t.match(response.headers['content-type'], /^application\/json/)
  const body = json<TokenBody>(response)
  t.type(body.access_token, 'string')
  t.equal(body.token_type, 'Bearer')
  t.type(body.expires_in, 'number')
  t.ok(body.expires_in > 0)
  t.type(body.refresh_token, 'string')
  t.match(body.refresh_token, /^[A-Za-z0-9_-]{43,}$/, 'refresh token: at least 256 bits, base64url')
  return body
}

function assertOAuthError (t: Test, response: Awaited<ReturnType<typeof passwordGrant>>, status: number, error: string) {
  t.equal(response.statusCode, status, response.body)
  const body = json(response)
  t.same(Object.keys(body).sort(), ['error', 'error_description'], 'RFC 6749 error body, nothing else')
  t.equal(body.error, error)
  t.type(body.error_description, 'string')
  t.equal(response.headers['cache-control'], 'no-store')
}

async function sessionCount (userId: string) {
  return app.db.session.count({ where: { userId } })
}

t.test('password grant with a JSON body', async (t) => {
  const email = uniqueEmail('json')
  const user = await signup(app, { email })
  const response = await passwordGrant(app, { username: email, password: PASSWORD })
  const body = assertTokenResponse(t, response)
  t.equal(body.expires_in, 600, 'default access-token lifetime: 10 minutes')
  t.notOk(response.headers['set-cookie'], 'body transport sets no cookie')
  t.equal(decodeJwt(body.access_token).sub, user.id)
})

t.test('password grant with an application/x-www-form-urlencoded body', async (t) => {
  const email = uniqueEmail('form')
  const user = await signup(app, { email })
  const response = await formGrant(app, { grant_type: 'password', username: email, password: PASSWORD })
  const body = assertTokenResponse(t, response)
  t.equal(decodeJwt(body.access_token).sub, user.id)

  const withCharset = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString(),
  })
  assertTokenResponse(t, withCharset)

  const wrong = await formGrant(app, { grant_type: 'password', username: email, password: 'not the password' })
  assertOAuthError(t, wrong, 400, 'invalid_grant')
})

t.test('missing parameters are invalid_request', async (t) => {
  const email = uniqueEmail('missing')
  await signup(app, { email })
  assertOAuthError(t, await passwordGrant(app, { password: PASSWORD }), 400, 'invalid_request')
  assertOAuthError(t, await passwordGrant(app, { username: email }), 400, 'invalid_request')
  assertOAuthError(t, await passwordGrant(app, {}), 400, 'invalid_request')
  assertOAuthError(
    t,
    await app.inject({ method: 'POST', url: '/auth/token', payload: { username: email, password: PASSWORD } }),
    400,
    'invalid_request'
  )
  assertOAuthError(t, await formGrant(app, { grant_type: 'password', username: email }), 400, 'invalid_request')
  assertOAuthError(t, await formGrant(app, { username: email, password: PASSWORD }), 400, 'invalid_request')
  // Malformed JSON on an OAuth endpoint still answers in RFC 6749 form.
  assertOAuthError(
    t,
    await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': 'application/json' }, payload: '{"grant_type":' }),
    400,
    'invalid_request'
  )
  assertOAuthError(
    t,
    await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: 12345678 } }),
    400,
    'invalid_request'
  )
  assertOAuthError(t, await passwordGrant(app, { refresh_token: 'x' }), 400, 'invalid_request')
  // An oversized body keeps its status, in RFC 6749 form.
  const huge = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=password&username=${encodeURIComponent(email)}&password=${'x'.repeat(70 * 1024)}`,
  })
  assertOAuthError(t, huge, 413, 'invalid_request')
})

t.test('wrong password and unknown email get the identical answer', async (t) => {
  const email = uniqueEmail('enum')
  await signup(app, { email })
  const wrongPassword = await passwordGrant(app, { username: email, password: 'not the password' })
  const unknownEmail = await passwordGrant(app, { username: uniqueEmail('nobody'), password: PASSWORD })
  assertOAuthError(t, wrongPassword, 400, 'invalid_grant')
  assertOAuthError(t, unknownEmail, 400, 'invalid_grant')
  t.equal(unknownEmail.statusCode, wrongPassword.statusCode)
  t.equal(unknownEmail.body, wrongPassword.body, 'same body byte for byte')
  t.equal(unknownEmail.headers['cache-control'], wrongPassword.headers['cache-control'])
  t.equal(unknownEmail.headers['www-authenticate'], wrongPassword.headers['www-authenticate'])
})

t.test('unsupported grant_type', async (t) => {
  for (const grantType of ['implicit', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'PASSWORD']) {
    const response = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: grantType } })
    assertOAuthError(t, response, 400, 'unsupported_grant_type')
  }
})

t.test('a supported grant the client is not registered for is unauthorized_client; a code grant without its parameters is invalid_request', async (t) => {
  // The default client is public: client_credentials is for confidential clients (RFC 6749 §4.4).
  assertOAuthError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'client_credentials' } }), 400, 'unauthorized_client')
  assertOAuthError(t, await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'authorization_code' } }), 400, 'invalid_request')
})

t.test('an unknown client_id is 401 invalid_client', async (t) => {
  const email = uniqueEmail('client')
  const user = await signup(app, { email })
  const before = await sessionCount(user.id)
  const response = await passwordGrant(app, { username: email, password: PASSWORD, client_id: 'not-a-client' })
  assertOAuthError(t, response, 401, 'invalid_client')
  for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    assertOAuthError(t, await passwordGrant(app, { username: email, password: PASSWORD, client_id: id }), 401, 'invalid_client')
  }
  t.equal(await sessionCount(user.id), before, 'no session started')
})

t.test('a disabled user gets invalid_grant, like a wrong password', async (t) => {
  const email = uniqueEmail('disabled')
  const user = await signup(app, { email })
  assertTokenResponse(t, await passwordGrant(app, { username: email, password: PASSWORD }))
  await app.db.user.update({ where: { id: user.id }, data: { disabled: true } })
  const before = await sessionCount(user.id)
  const response = await passwordGrant(app, { username: email, password: PASSWORD })
  assertOAuthError(t, response, 400, 'invalid_grant')
  const wrong = await passwordGrant(app, { username: email, password: 'not the password' })
  t.equal(response.body, wrong.body, 'a disabled account is not told apart from a wrong password')
  t.equal(await sessionCount(user.id), before, 'no session started')
})

t.test('the access token: RFC 9068 header and claims', async (t) => {
  const email = uniqueEmail('claims')
  const user = await signup(app, { email })
  const before = Math.floor(main.clock.now() / 1000)
  const body = assertTokenResponse(t, await passwordGrant(app, { username: email, password: PASSWORD, client_id: 'mobile' }))
  const after = Math.floor(main.clock.now() / 1000)

  const header = decodeProtectedHeader(body.access_token)
  t.equal(header.typ, 'at+jwt')
  t.equal(header.alg, 'ES256')
  t.type(header.kid, 'string')
  const jwks = json<JSONWebKeySet>(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
  t.ok(
    jwks.keys.some((key) => key.kid === header.kid),
    'the kid is published in the JWKS'
  )

  // A standard verifier with the published keys accepts it.
  const { payload } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
    issuer: 'http://auth.test',
    audience: main.config.audience,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  })
  t.equal(payload.iss, 'http://auth.test')
  t.equal(payload.aud, main.config.audience)
  t.equal(payload.sub, user.id)
  t.equal(payload.client_id, 'mobile')
  t.equal(payload.scope, 'profile')
  t.equal(payload.role, 'user')
  t.match(payload.jti, /^[0-9a-f-]{36}$/)
  t.type(payload.iat, 'number')
  t.ok(payload.iat! >= before && payload.iat! <= after, 'iat is now')
  t.equal(payload.exp! - payload.iat!, 600, 'exp - iat = 600 by default')
  t.equal(body.expires_in, 600)
  const session = await app.db.session.findUnique({ where: { id: String(payload.sid) } })
  t.ok(session, 'sid names the session')
  t.equal(session?.userId, user.id)
  t.equal(session?.clientId, 'mobile')
  t.same(
    Object.keys(payload).sort(),
    ['amr', 'aud', 'auth_time', 'client_id', 'exp', 'iat', 'iss', 'jti', 'role', 'scope', 'sid', 'sub'],
    'exactly the claims of the profile, with how the user authenticated (no acr: one factor asserts no level)'
  )
  t.same(payload.amr, ['pwd'], 'a password login: amr pwd (RFC 8176)')
  t.ok(Math.abs((payload.auth_time as number) - payload.iat!) <= 1, 'auth_time: the login, just now')

  const second = assertTokenResponse(t, await passwordGrant(app, { username: email, password: PASSWORD }))
  const secondClaims = decodeJwt(second.access_token)
  t.not(secondClaims.jti, payload.jti, 'every token has its own jti')
  t.not(secondClaims.sid, payload.sid, 'every login starts its own session')

  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${body.access_token}` } })
  t.equal(me.statusCode, 200, 'the service accepts its own token')
})

t.test('an admin gets a 5-minute access token', async (t) => {
  const email = uniqueEmail('admin')
  const user = await signup(app, { email })
  await app.db.user.update({ where: { id: user.id }, data: { role: 'admin' } })
  const body = assertTokenResponse(t, await passwordGrant(app, { username: email, password: PASSWORD }))
  const claims = decodeJwt(body.access_token)
  t.equal(claims.role, 'admin')
  t.equal(claims.exp! - claims.iat!, 300, 'exp - iat = 300 for an admin')
  t.equal(body.expires_in, 300)
})

t.test('scope: a subset may be asked for, anything else is invalid_scope', async (t) => {
  const scoped = await buildTestApp({ SCOPES: 'profile email' }, { database })
  t.teardown(scoped.close)
  const email = uniqueEmail('scope')
  await signup(scoped.app, { email })

  const all = assertTokenResponse(t, await passwordGrant(scoped.app, { username: email, password: PASSWORD }))
  t.equal(decodeJwt(all.access_token).scope, 'profile email', 'no scope parameter: every scope of the client')

  const subset = assertTokenResponse(t, await passwordGrant(scoped.app, { username: email, password: PASSWORD, scope: 'email' }))
  t.equal(decodeJwt(subset.access_token).scope, 'email')

  const both = assertTokenResponse(t, await passwordGrant(scoped.app, { username: email, password: PASSWORD, scope: 'email profile' }))
  t.same(String(decodeJwt(both.access_token).scope).split(' ').sort(), ['email', 'profile'])

  const viaForm = await scoped.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD, scope: 'profile' }).toString(),
  })
  t.equal(decodeJwt(assertTokenResponse(t, viaForm).access_token).scope, 'profile')

  for (const scope of ['admin', 'email admin', 'profile:write', 'PROFILE']) {
    const response = await passwordGrant(scoped.app, { username: email, password: PASSWORD, scope })
    assertOAuthError(t, response, 400, 'invalid_scope')
  }

  // A refresh may narrow the scope of the session, never widen it.
  const narrowed = await scoped.app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'refresh_token', refresh_token: subset.refresh_token, scope: 'profile' },
  })
  assertOAuthError(t, narrowed, 400, 'invalid_scope')
})

t.test('a request without client_id uses the default client (mobile, body transport)', async (t) => {
  const email = uniqueEmail('default')
  const user = await signup(app, { email })
  const response = await passwordGrant(app, { username: email, password: PASSWORD })
  const body = assertTokenResponse(t, response)
  t.notOk(response.headers['set-cookie'], 'no cookie')
  t.ok(body.refresh_token, 'refresh token in the body')
  const claims = decodeJwt(body.access_token)
  t.equal(claims.client_id, 'mobile')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: String(claims.sid) } })
  t.equal(session.clientId, 'mobile')
  t.equal(session.userId, user.id)

  // The refresh token it gave works without client_id too.
  const refreshed = await app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'refresh_token', refresh_token: body.refresh_token },
  })
  assertTokenResponse(t, refreshed)
})

t.test('a body that is neither JSON nor form-encoded is 415 and never reaches the handler', async (t) => {
  const email = uniqueEmail('ctype')
  const user = await signup(app, { email })
  const form = new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString()
  const jsonBody = JSON.stringify({ grant_type: 'password', username: email, password: PASSWORD })
  const auditBefore = await app.db.auditEvent.count({ where: { userId: user.id } })
  const sessionsBefore = await sessionCount(user.id)
  const cases: [string, string][] = [
    ['text/plain', form],
    ['text/plain;charset=UTF-8', jsonBody],
    ['multipart/form-data; boundary=XyZ', '--XyZ\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\npassword\r\n--XyZ--\r\n'],
    ['application/xml', '<grant_type>password</grant_type>'],
    ['application/x-www-form-urlencodedx', form],
    ['application/jsonp', jsonBody],
    ['text/json', jsonBody],
    ['application/octet-stream', form],
  ]
  for (const [contentType, payload] of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/token', headers: { 'content-type': contentType }, payload })
    t.equal(response.statusCode, 415, `${contentType}: 415 (${response.body})`)
    t.ok(json(response), 'JSON error body')
  }
  t.equal(await sessionCount(user.id), sessionsBefore, 'no login happened')
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id } }), auditBefore, 'no login attempt reached the handler')
})

t.test('a login flood past the bcrypt queue\'s bound gets 503 temporarily_unavailable at once; other routes keep answering', async (t) => {
  // Security review finding 10. Cost 10 makes a compare take tens of ms; a
  // 50 ms bound then admits a few queued logins and sheds the rest.
  const flooded = await buildTestApp({ BCRYPT_COST: '10', PASSWORD_QUEUE_MAX_WAIT_MS: '50' }, { database: main.database })
  t.teardown(() => flooded.close())
  const email = `flood-${Date.now()}@token.test`
  const signup = await flooded.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
  t.equal(signup.statusCode, 201, signup.body)
  const order: string[] = []
  const logins = Array.from({ length: 60 }, () =>
    flooded.app
      .inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
      .then((response) => {
        order.push(String(response.statusCode))
        return response
      })
  )
  const health = await flooded.app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200, 'another route answers')
  t.ok(order.length < 60, `while logins are still in flight (${60 - order.length} unanswered)`)
  const responses = await Promise.all(logins)
  const shed = responses.filter((r) => r.statusCode === 503)
  t.ok(shed.length > 0, `${shed.length} of 60 shed`)
  t.ok(responses.some((r) => r.statusCode === 200), 'the admitted logins succeed')
  t.same(responses.filter((r) => r.statusCode !== 200 && r.statusCode !== 503).map((r) => r.body), [], 'nothing else')
  const first = shed[0]!
  t.same(json(first), { error: 'temporarily_unavailable', error_description: 'too many password checks are waiting; retry shortly' })
  t.ok(Number(first.headers['retry-after']) >= 1, `Retry-After ${String(first.headers['retry-after'])}`)
  t.equal(first.headers['cache-control'], 'no-store')
  // Shed at once: every 503 arrives before the last admitted login is served.
  t.ok(order.lastIndexOf('503') < order.lastIndexOf('200'), 'the refusals did not wait in the queue')
})
