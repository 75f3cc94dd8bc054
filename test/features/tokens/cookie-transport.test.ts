import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { passwordGrant, PASSWORD, sidOf, signup } from '../../helpers/users.js'

/**
 * Browser (cookie) transport (DESIGN §3.6): the refresh cookie's attributes,
 * the CSRF defence of requests that use it (allowed Origin + X-Requested-With),
 * Token-Transport, CORS with credentials, and that no other body type reaches
 * a cookie-authenticated handler.
 */

const main = await fileTestApp()
const { app, database } = main

const COOKIE = '__Secure-refresh_token'
const SPA = 'http://spa.test'
const CSRF = { origin: SPA, 'x-requested-with': 'XMLHttpRequest' }

type Response = Awaited<ReturnType<TestApp['app']['inject']>>

interface TokenBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token?: string
}

function refreshCookie (response: Response) {
  return response.cookies.find((c) => c.name === COOKIE)
}

/** Password login as the web client: returns the cookie value and the session id. */
async function webLogin (t: Test, target: TestApp['app'] = app) {
  const { email, id: userId } = await signup(target)
  const response = await passwordGrant(target, email, { clientId: 'web', headers: CSRF })
  t.equal(response.statusCode, 200, `web login (${response.body})`)
  const cookie = refreshCookie(response)
  if (!cookie) throw new Error(`no refresh cookie: ${JSON.stringify(response.headers['set-cookie'])}`)
  const body = json<TokenBody>(response)
  return { userId, cookie: cookie.value, sessionId: sidOf(body.access_token), response, body }
}

function cookieRefresh (target: TestApp['app'], cookie: string, headers: Record<string, string>, clientId = 'web') {
  return target.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { cookie: `${COOKIE}=${cookie}`, ...headers },
    payload: { grant_type: 'refresh_token', client_id: clientId },
  })
}

/** Whether a refresh token is its session's live one (not retired, the session able to refresh). */
async function isLive (refreshToken: string): Promise<boolean> {
  return (await app.sessions.liveGrant({ refreshToken })) !== null
}

function sessionOf (sessionId: string) {
  return app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
}

function assertRefreshCookie (t: Test, response: Response, maxAgeAtMost: number) {
  const cookie = refreshCookie(response)
  t.ok(cookie, `Set-Cookie ${COOKIE}`)
  t.equal(cookie?.httpOnly, true, 'HttpOnly')
  t.equal(cookie?.secure, true, 'Secure')
  t.equal(cookie?.sameSite, 'Strict', 'SameSite=Strict')
  t.equal(cookie?.path, '/auth', 'Path=/auth')
  t.notOk(cookie?.domain, 'host-only')
  t.type(cookie?.maxAge, 'number')
  t.ok(cookie!.maxAge! > 0 && cookie!.maxAge! <= maxAgeAtMost, `0 < Max-Age (${cookie?.maxAge}) <= ${maxAgeAtMost}`)
  t.match(cookie?.value, /^[A-Za-z0-9_-]{92}$/)
  const raw = ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${COOKIE}=`))
  t.match(raw, /;\s*HttpOnly/i)
  t.match(raw, /;\s*Secure/i)
  t.match(raw, /;\s*SameSite=Strict/i)
}

function assertClearedCookie (t: Test, response: Response) {
  const raw = ([] as string[]).concat(response.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${COOKIE}=`))
  t.ok(raw, 'the refresh cookie is set again to clear it')
  const cookie = refreshCookie(response)
  t.equal(cookie?.value, '', 'empty value')
  t.equal(cookie?.path, '/auth', 'on the same path')
  const expired = cookie?.maxAge === 0 || (cookie?.expires !== undefined && cookie.expires.getTime() <= Date.now())
  t.ok(expired, `Max-Age=0 or Expires in the past (${raw})`)
}

t.test('web client: the refresh token is in a cookie, not the body', async (t) => {
  const { response, body, sessionId } = await webLogin(t)
  t.equal(response.headers['cache-control'], 'no-store')
  t.notOk('refresh_token' in body, 'no refresh_token in the body')
  t.type(body.access_token, 'string')
  t.equal(body.token_type, 'Bearer')
  assertRefreshCookie(t, response, 7 * 24 * 3600)
  t.ok(refreshCookie(response)!.maxAge! >= 7 * 24 * 3600 - 60, 'Max-Age is the idle lifetime')
  const session = await sessionOf(sessionId)
  t.equal(session.clientId, 'web')
  t.ok(await isLive(refreshCookie(response)!.value), 'the cookie holds the session\'s live refresh token')
})

t.test('the cookie Max-Age is bounded by the session expiry', async (t) => {
  const short = await buildTestApp({ REFRESH_IDLE_TTL_SECONDS: '100', REFRESH_ABSOLUTE_TTL_SECONDS: '150' }, { database })
  t.teardown(short.close)
  const { cookie, response } = await webLogin(t, short.app)
  assertRefreshCookie(t, response, 100)
  short.clock.advance(90)
  const refreshed = await cookieRefresh(short.app, cookie, CSRF)
  t.equal(refreshed.statusCode, 200, refreshed.body)
  // 90 s in: idle would end at 190 s, the session itself ends at 150 s.
  assertRefreshCookie(t, refreshed, 60)
})

t.test('refresh with the cookie, an allowed Origin and X-Requested-With rotates the cookie', async (t) => {
  const { cookie, sessionId } = await webLogin(t)
  const response = await cookieRefresh(app, cookie, CSRF)
  t.equal(response.statusCode, 200, response.body)
  const body = json<TokenBody>(response)
  t.notOk('refresh_token' in body, 'no refresh_token in the body')
  t.equal(sidOf(body.access_token), sessionId)
  assertRefreshCookie(t, response, 7 * 24 * 3600)
  const next = refreshCookie(response)!.value
  t.not(next, cookie, 'a new cookie value')
  t.equal(await isLive(cookie), false, 'the old cookie token is retired')
  t.equal(await isLive(next), true, 'the new one is live')
  t.equal(response.headers['access-control-allow-origin'], SPA, 'CORS answer for the SPA')
  t.equal(response.headers['access-control-allow-credentials'], 'true')

  const again = await cookieRefresh(app, next, CSRF)
  t.equal(again.statusCode, 200, 'the rotated cookie refreshes')
  t.not(refreshCookie(again)?.value, next)
})

t.test('cookie refresh without the CSRF defence is refused with 403 and rotates nothing', async (t) => {
  const { cookie, sessionId } = await webLogin(t)
  const cases: [string, Record<string, string>][] = [
    ['without X-Requested-With', { origin: SPA }],
    ['with a foreign Origin', { origin: 'http://evil.test', 'x-requested-with': 'XMLHttpRequest' }],
    ['with a look-alike Origin', { origin: 'http://spa.test.evil.test', 'x-requested-with': 'XMLHttpRequest' }],
    ['with the allowed host on another scheme', { origin: 'https://spa.test', 'x-requested-with': 'XMLHttpRequest' }],
    ['with Origin null', { origin: 'null', 'x-requested-with': 'XMLHttpRequest' }],
    ['without Origin', { 'x-requested-with': 'XMLHttpRequest' }],
    ['without Origin, with a same-site Referer', { referer: `${SPA}/app`, 'x-requested-with': 'XMLHttpRequest' }],
    ['without either', {}],
  ]
  for (const [name, headers] of cases) {
    const response = await cookieRefresh(app, cookie, headers)
    t.equal(response.statusCode, 403, `${name}: 403 (${response.body})`)
    t.type(json(response).error, 'string', `${name}: an RFC 6749 error body`)
    t.notOk(refreshCookie(response)?.value, `${name}: no new cookie`)
  }
  t.equal(await isLive(cookie), true, 'the cookie token was not rotated')
  t.equal((await sessionOf(sessionId)).generation, 0)
  t.equal((await sessionOf(sessionId)).revokedAt, null)
  const ok = await cookieRefresh(app, cookie, CSRF)
  t.equal(ok.statusCode, 200, 'the cookie still works with the defence in place')
})

t.test('Token-Transport: cookie gives cookie transport to a client that allows it (mobile)', async (t) => {
  const { email } = await signup(app)
  const response = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'token-transport': 'cookie', ...CSRF },
    payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'mobile' },
  })
  t.equal(response.statusCode, 200, response.body)
  const body = json<TokenBody>(response)
  t.notOk('refresh_token' in body, 'no refresh_token in the body')
  assertRefreshCookie(t, response, 7 * 24 * 3600)
  t.equal(JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString()).client_id, 'mobile')

  const cookie = refreshCookie(response)!.value
  const refreshed = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { cookie: `${COOKIE}=${cookie}`, 'token-transport': 'cookie', ...CSRF },
    payload: { grant_type: 'refresh_token', client_id: 'mobile' },
  })
  t.equal(refreshed.statusCode, 200, refreshed.body)
  t.notOk('refresh_token' in json(refreshed))
  assertRefreshCookie(t, refreshed, 7 * 24 * 3600)

  const withoutCsrf = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { cookie: `${COOKIE}=${refreshCookie(refreshed)!.value}`, 'token-transport': 'cookie' },
    payload: { grant_type: 'refresh_token', client_id: 'mobile' },
  })
  t.equal(withoutCsrf.statusCode, 403, 'the cookie needs the CSRF defence whatever the client')
})

t.test('a transport the client does not allow is refused with invalid_request', async (t) => {
  const { email, id: userId } = await signup(app)
  for (const clientId of ['web', 'admin']) {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'token-transport': 'body' },
      payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: clientId },
    })
    t.equal(response.statusCode, 400, `${clientId} with body transport (${response.body})`)
    t.equal(json(response).error, 'invalid_request')
    t.notOk(refreshCookie(response), 'no cookie')
  }
  const bogus = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'token-transport': 'carrier-pigeon' },
    payload: { grant_type: 'password', username: email, password: PASSWORD },
  })
  t.equal(bogus.statusCode, 400)
  t.equal(json(bogus).error, 'invalid_request')
  t.equal(await app.db.session.count({ where: { userId } }), 1, 'no session besides the sign-up one')
})

t.test('CORS: the allowed origin gets credentials, another does not', async (t) => {
  const preflight = (origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/auth/token',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-requested-with',
      },
    })
  const allowed = await preflight(SPA)
  t.ok(allowed.statusCode >= 200 && allowed.statusCode < 300, `preflight status ${allowed.statusCode}`)
  t.equal(allowed.headers['access-control-allow-origin'], SPA)
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.match(String(allowed.headers['access-control-allow-methods']), /POST/)
  t.match(String(allowed.headers['access-control-allow-headers']).toLowerCase(), /x-requested-with/)
  t.match(String(allowed.headers['vary'] ?? '').toLowerCase(), /origin/, 'Vary: Origin')

  for (const origin of ['http://evil.test', 'https://spa.test', 'http://spa.test.evil.test', 'null']) {
    const refused = await preflight(origin)
    t.notOk(refused.headers['access-control-allow-origin'], `${origin}: no Access-Control-Allow-Origin`)
    t.notOk(refused.headers['access-control-allow-credentials'], `${origin}: no Access-Control-Allow-Credentials`)
  }

  const simple = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'http://evil.test' } })
  t.notOk(simple.headers['access-control-allow-origin'], 'no ACAO on a simple request from another origin')
  t.notOk(simple.headers['access-control-allow-origin'] === '*', 'never a wildcard')
})

t.test('a cookie-authenticated POST /auth/logout with another body type is 415 and revokes nothing', async (t) => {
  const { cookie, sessionId } = await webLogin(t)
  const cases: [string, string, Record<string, string>][] = [
    // What a cross-site HTML form can send: no custom header, a foreign Origin.
    ['application/x-www-form-urlencoded', 'scope=global', { origin: 'http://evil.test' }],
    ['text/plain', 'scope=global', { origin: 'http://evil.test' }],
    ['multipart/form-data; boundary=XyZ', '--XyZ\r\nContent-Disposition: form-data; name="scope"\r\n\r\nglobal\r\n--XyZ--\r\n', { origin: 'http://evil.test' }],
    // The same bodies with every other check passed: the body type alone is refused.
    ['application/x-www-form-urlencoded', 'scope=global', CSRF],
    ['text/plain', 'scope=global', CSRF],
    ['text/plain;charset=UTF-8', '{}', CSRF],
    ['multipart/form-data; boundary=XyZ', '--XyZ--\r\n', CSRF],
  ]
  for (const [contentType, payload, headers] of cases) {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { cookie: `${COOKIE}=${cookie}`, 'content-type': contentType, ...headers },
      payload,
    })
    t.equal(response.statusCode, 415, `${contentType} from ${headers.origin}: 415 (${response.body})`)
    t.notOk(refreshCookie(response), 'the cookie is left alone')
    t.equal((await sessionOf(sessionId)).revokedAt, null, 'the session is not revoked')
  }
  t.equal(await app.db.auditEvent.count({ where: { type: 'logged_out', details: { path: ['sessionId'], equals: sessionId } } }), 0)
  const stillWorks = await cookieRefresh(app, cookie, CSRF)
  t.equal(stillWorks.statusCode, 200, 'the cookie still refreshes')
})

t.test('cookie logout without the CSRF defence is 403 and revokes nothing', async (t) => {
  const { cookie, sessionId } = await webLogin(t)
  for (const headers of [{ origin: SPA }, { origin: 'http://evil.test', 'x-requested-with': 'XMLHttpRequest' }, { 'x-requested-with': 'XMLHttpRequest' }]) {
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${cookie}`, ...headers } })
    t.equal(response.statusCode, 403, `${JSON.stringify(headers)}: 403 (${response.body})`)
    t.equal((await sessionOf(sessionId)).revokedAt, null)
  }
})

t.test('logout with the cookie and the CSRF defence clears the cookie and revokes the session', async (t) => {
  const { cookie, sessionId, body } = await webLogin(t)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: `${COOKIE}=${cookie}`, ...CSRF } })
  t.equal(response.statusCode, 204, response.body)
  assertClearedCookie(t, response)
  const session = await sessionOf(sessionId)
  t.ok(session.revokedAt, 'session revoked')

  const refresh = await cookieRefresh(app, cookie, CSRF)
  t.equal(refresh.statusCode, 400)
  t.equal(json(refresh).error, 'invalid_grant', 'the cookie no longer refreshes')
  assertClearedCookie(t, refresh)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${body.access_token}` } })
  t.equal(me.statusCode, 401, "the session's access token is refused")
})

t.test('COOKIE_SECURE=false: a plain cookie name without Secure (localhost development)', async (t) => {
  const dev = await buildTestApp({ COOKIE_SECURE: 'false', ISSUER: 'http://localhost:3000' }, { database })
  t.teardown(dev.close)
  const { email } = await signup(dev.app)
  const response = await dev.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: CSRF,
    payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'web' },
  })
  t.equal(response.statusCode, 200)
  const cookie = response.cookies.find((c) => c.name === 'refresh_token')
  t.ok(cookie, 'refresh_token cookie (the __Secure- prefix needs Secure)')
  t.notOk(cookie?.secure)
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Strict')
})

t.test('a login that would set the refresh cookie needs the CSRF defence too (no login CSRF)', async (t) => {
  const { email } = await signup(app)
  const login = (headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/auth/token',
      headers,
      payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'web' },
    })
  // What a cross-site HTML form can send: a foreign Origin, no custom header.
  const attempts: Record<string, Record<string, string>> = {
    'a cross-site form': { origin: 'http://evil.test' },
    'no X-Requested-With': { origin: SPA },
    'no Origin': { 'x-requested-with': 'XMLHttpRequest' },
  }
  for (const [name, headers] of Object.entries(attempts)) {
    const response = await login(headers)
    t.equal(response.statusCode, 403, `${name}: 403`)
    t.equal(refreshCookie(response), undefined, `${name}: no cookie set`)
  }
  const signupResponse = await app.inject({
    method: 'POST',
    url: '/auth/signup',
    headers: { origin: 'http://evil.test' },
    payload: { email: `csrf-${Date.now()}@example.test`, password: PASSWORD, client_id: 'web' },
  })
  t.equal(signupResponse.statusCode, 403, 'a cross-site sign-up into cookie transport is refused')
  t.equal(refreshCookie(signupResponse), undefined, 'and sets no cookie')
  t.equal((await login(CSRF)).statusCode, 200, 'the SPA on an allowed origin signs in')
})
