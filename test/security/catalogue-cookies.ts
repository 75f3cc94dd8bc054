import type { Test } from 'tap'
import { json } from '../helpers/app.js'
import { assertNo5xx, PASSWORD_GRANT_PATH, type SignInPath } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { EVIL_ORIGIN, PASSWORD, SPA_ORIGIN, setCookies, type AttackContext, type Response } from './context.js'

/**
 * CK-04: a cross-site form posting a cookie-transport login through `path`
 * is refused (403) and sets no refresh cookie; the refused answer.
 */
export async function loginCsrf (ctx: AttackContext, t: Test, path: SignInPath): Promise<Response> {
  const a = await ctx.signup('login-csrf')
  const response = await path.password(ctx.app, a.email, PASSWORD, { clientId: 'web', headers: { origin: EVIL_ORIGIN }, encoding: 'form' })
  t.equal(response.statusCode, 403)
  t.equal(setCookies(response).filter((c) => /refresh_token=[^;]/.test(c)).length, 0, 'no refresh cookie set')
  return response
}

/** CK-05: the refresh cookie a cookie-transport sign-in through `path` sets: HttpOnly, Secure, SameSite=Strict, Path=/auth, __Secure-. */
export async function refreshCookieAttributes (ctx: AttackContext, t: Test, path: SignInPath) {
  const a = await ctx.signup('cookie-attrs')
  const options = { clientId: 'web', headers: { origin: SPA_ORIGIN, 'x-requested-with': 'x' } }
  const response = await path.tokens(ctx.app, await path.password(ctx.app, a.email, PASSWORD, options), options)
  const cookie = setCookies(response).find((c) => c.includes('refresh_token='))!
  t.match(cookie, /^__Secure-refresh_token=/)
  t.match(cookie, /; HttpOnly/i)
  t.match(cookie, /; Secure/i)
  t.match(cookie, /; SameSite=Strict/i)
  t.match(cookie, /; Path=\/auth(;|$)/)
  t.notMatch(cookie, /Domain=/i, 'host-only')
  t.equal(json(response).refresh_token, undefined, 'not in the body')
  t.equal(response.headers['cache-control'], 'no-store')
}

/**
 * Cookies and CSRF (RFC 6749 §10.12, RFC 9700 §4.7, ASVS V3).
 */

const cookieHeaders = (name: string, value: string, extra: Record<string, string> = {}) => ({
  cookie: `${name}=${value}`,
  ...extra,
})

export const cookieCases: AttackCase[] = [
  {
    id: 'CK-01',
    title: 'a stolen refresh cookie replayed from a foreign Origin is refused and not rotated',
    source: 'RFC 9700 §4.7; RFC 6749 §10.12; ASVS 5.0 V3.5.1',
    async run (ctx, t) {
      const a = await ctx.signup('stolen-cookie')
      const web = await ctx.webLogin(a.email)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: cookieHeaders(web.cookieName, web.cookie, { origin: EVIL_ORIGIN, 'x-requested-with': 'x' }),
        payload: { grant_type: 'refresh_token', client_id: 'web' },
      })
      t.equal(response.statusCode, 403)
      t.equal(response.headers['access-control-allow-origin'], undefined, 'no CORS grant to the foreign origin')
      const fine = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: cookieHeaders(web.cookieName, web.cookie, { origin: SPA_ORIGIN, 'x-requested-with': 'x' }),
        payload: { grant_type: 'refresh_token', client_id: 'web' },
      })
      t.equal(fine.statusCode, 200, 'the cookie was not rotated by the refused request')
    },
  },
  {
    id: 'CK-02',
    title: 'CSRF: a cookie request without X-Requested-With, without Origin, or with Origin null is refused',
    source: 'RFC 6749 §10.12; RFC 9700 §4.7; ASVS 5.0 V3.5.1, V3.5.2',
    async run (ctx, t) {
      const a = await ctx.signup('csrf')
      const web = await ctx.webLogin(a.email)
      for (const [label, headers] of [
        ['allowed Origin, no X-Requested-With', { origin: SPA_ORIGIN }],
        ['no Origin', { 'x-requested-with': 'x' }],
        ['Origin null', { origin: 'null', 'x-requested-with': 'x' }],
        ['lookalike Origin', { origin: `${SPA_ORIGIN}.evil.example`, 'x-requested-with': 'x' }],
      ] as const) {
        const refresh = await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          headers: cookieHeaders(web.cookieName, web.cookie, headers),
          payload: { grant_type: 'refresh_token', client_id: 'web' },
        })
        t.equal(refresh.statusCode, 403, `refresh, ${label}`)
        const logout = await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: cookieHeaders(web.cookieName, web.cookie, headers) })
        t.equal(logout.statusCode, 403, `logout, ${label}`)
      }
      t.notOk(await ctx.sessionRevoked(web.access_token), 'nothing revoked')
    },
  },
  {
    id: 'CK-03',
    title: 'a cross-site text/plain form POST to the cookie-authenticated logout is 415',
    source: 'RFC 9700 §4.7; RFC 6749 §10.12; CVE-2022-41919',
    async run (ctx, t) {
      const a = await ctx.signup('form-csrf')
      const web = await ctx.webLogin(a.email)
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: cookieHeaders(web.cookieName, web.cookie, { 'content-type': type, origin: EVIL_ORIGIN }),
          payload: 'a=b',
        })
        t.ok([403, 415].includes(response.statusCode), `${type}: ${response.statusCode}`)
      }
      t.notOk(await ctx.sessionRevoked(web.access_token), 'nothing revoked')
    },
  },
  {
    id: 'CK-04',
    title: 'login CSRF: a cookie-setting login without the CSRF defence is refused',
    source: 'RFC 6749 §10.12; RFC 9700 §4.7; ASVS 5.0 V3.5.1',
    async run (ctx, t) {
      await loginCsrf(ctx, t, PASSWORD_GRANT_PATH)
    },
  },
  {
    id: 'CK-05',
    title: 'the refresh cookie is HttpOnly, Secure, SameSite=Strict, Path=/auth, __Secure- prefixed',
    source: 'ASVS 5.0 V3.3.1, V3.3.2, V3.3.4; RFC 6750 §5.3',
    run: (ctx, t) => refreshCookieAttributes(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'CK-06',
    title: 'header injection through the cookie and request-id headers is not reflected',
    source: 'RFC 6265 §4.1.1; CWE-113 (header injection); CWE-117 (log injection)',
    async run (ctx, t) {
      const name = '__Secure-refresh_token'
      for (const value of ['abc%0d%0aSet-Cookie:%20evil=1', 'abc\\r\\nX-Evil: 1', 'x; Path=/; Domain=evil.example', '"abc\u0000def"']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          headers: { cookie: `${name}=${value}`, origin: SPA_ORIGIN, 'x-requested-with': 'x' },
          payload: { grant_type: 'refresh_token', client_id: 'web' },
        })
        assertNo5xx(t, response, `cookie ${JSON.stringify(value).slice(0, 30)}`)
        const cookies = setCookies(response).join('\n')
        t.notMatch(cookies, /evil/i, 'nothing injected into Set-Cookie')
        t.equal(response.headers['x-evil'], undefined)
      }
      const injected = await ctx.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc def"}{"level":60' } })
      t.not(injected.headers['x-request-id'], 'abc def"}{"level":60', 'a hostile request id is replaced, not echoed')
      t.match(String(injected.headers['x-request-id']), /^[0-9a-f-]{36}$/)
    },
  },
  {
    id: 'CK-07',
    title: 'CORS: a foreign origin gets no credentialed access; the allowed origin does',
    source: 'RFC 9700 §4.7; ASVS 5.0 V3.4.2 (CORS allow-list); CWE-942',
    async run (ctx, t) {
      const foreign = await ctx.app.inject({
        method: 'OPTIONS',
        url: '/auth/token',
        headers: { origin: EVIL_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
      })
      t.equal(foreign.headers['access-control-allow-origin'], undefined, 'no allow-origin for a foreign origin')
      const allowed = await ctx.app.inject({
        method: 'OPTIONS',
        url: '/auth/token',
        headers: { origin: SPA_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
      })
      t.equal(allowed.headers['access-control-allow-origin'], SPA_ORIGIN)
      t.equal(allowed.headers['access-control-allow-credentials'], 'true')
      t.not(allowed.headers['access-control-allow-origin'], '*')
    },
  },
]
