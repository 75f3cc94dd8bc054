import t from 'tap'
import { AuthorizationResponseError, beginRedirectSignIn, completeRedirectSignIn, type RedirectStorage } from '../../src/client/redirect.js'
import { AuthError } from '../../src/client/errors.js'
import { json, listeningTestApp } from '../helpers/app.js'
import { injectAs, PASSWORD, signup, signupAdmin } from '../helpers/users.js'

/** The SDK's redirect sign-in against the service: a public client, PKCE, state, nonce; the callback caught, not followed. */
const auth = await listeningTestApp()
const { issuer } = auth
t.teardown(auth.close)
const admin = await signupAdmin(auth.app)
const redirectUri = 'http://127.0.0.1:9/callback'
const reg = await injectAs(auth.app, admin.access_token, 'POST', '/admin/clients', {
  client_name: 'SPA', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
})
if (reg.statusCode !== 201) throw new Error(reg.body)
const clientId = json<{ client_id: string }>(reg).client_id
const user = await signup(auth.app, { label: 'spa' })

class MemoryStorage implements RedirectStorage {
  map = new Map<string, string>()
  getItem (k: string) { return this.map.get(k) ?? null }
  setItem (k: string, v: string) { this.map.set(k, v) }
  removeItem (k: string) { this.map.delete(k) }
}

function hidden (html: string, action: string): Record<string, string> {
  const form = new RegExp(`<form[^>]*action="${action}"[^>]*>([\\s\\S]*?)</form>`).exec(html)?.[1]
  if (!form) throw new Error(`no form ${action}: ${html.slice(0, 500)}`)
  const fields: Record<string, string> = {}
  for (const m of form.matchAll(/<input\b([^>]*)>/g)) {
    const name = /name="([^"]*)"/.exec(m[1]!)?.[1]; const value = /value="([^"]*)"/.exec(m[1]!)?.[1]; const type = /type="([^"]*)"/.exec(m[1]!)?.[1]
    if (type === 'hidden' && name) fields[name] = (value ?? '').replace(/&amp;/g, '&')
  }
  return fields
}

/** Drives the hosted pages until the redirect to redirectUri, which it returns. */
async function browse (start: URL, decision: 'allow' | 'deny'): Promise<string> {
  const jar = new Map<string, string>()
  let url = start
  let body: Record<string, string> | undefined
  for (let i = 0; i < 10; i++) {
    const response = await fetch(url, {
      method: body ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(body ? { 'content-type': 'application/x-www-form-urlencoded', origin: issuer } : {}) },
      ...(body ? { body: new URLSearchParams(body).toString() } : {}),
    })
    for (const c of response.headers.getSetCookie()) { const [pair = ''] = c.split(';'); const at = pair.indexOf('='); jar.set(pair.slice(0, at), pair.slice(at + 1)) }
    const location = response.headers.get('location')
    if (location) {
      const next = new URL(location, url)
      if (next.href.startsWith(redirectUri)) return next.href
      url = next; body = undefined; continue
    }
    const html = await response.text()
    if (html.includes('action="/oauth/sign-in"')) { url = new URL('/oauth/sign-in', issuer); body = { ...hidden(html, '/oauth/sign-in'), email: user.email, password: PASSWORD } } else if (html.includes('action="/oauth/consent"')) { url = new URL('/oauth/consent', issuer); body = { ...hidden(html, '/oauth/consent'), decision } } else throw new Error(`stuck at ${url} ${response.status}: ${html.slice(0, 500)}`)
  }
  throw new Error('too many steps')
}

t.test('begin, consent, complete: tokens and checked ID token claims', async (t) => {
  const storage = new MemoryStorage()
  const options = { issuer, clientId, redirectUri, storage }
  const url = await beginRedirectSignIn({ ...options, scope: 'openid email offline_access' })
  t.equal(url.searchParams.get('code_challenge_method'), 'S256')
  t.equal(storage.map.size, 1)
  const callback = await browse(url, 'allow')
  const result = await completeRedirectSignIn({ ...options, url: callback })
  t.equal(result.claims.sub, user.id)
  t.equal(result.claims.email, user.email)
  t.equal(result.claims.aud, clientId)
  t.ok(result.accessToken && result.idToken)
  t.ok(result.refreshToken, 'offline_access: a refresh token')
  t.ok(result.expiresIn! > 0)
  t.match(result.scope, /openid/)
  t.equal(storage.map.size, 0, 'the pending sign-in is spent')
  await t.rejects(completeRedirectSignIn({ ...options, url: callback }), { name: 'AuthError', code: 'invalid_response' }, 'a second completion is refused')
})

t.test('a callback whose state is not this sign-in\'s is refused before any exchange', async (t) => {
  const storage = new MemoryStorage()
  const options = { issuer, clientId, redirectUri, storage }
  await beginRedirectSignIn(options)
  const forged = `${redirectUri}?code=abc&state=other&iss=${encodeURIComponent(issuer)}`
  const error = await completeRedirectSignIn({ ...options, url: forged }).catch((e: unknown) => e)
  t.ok(error instanceof AuthError)
  t.equal((error as AuthError).code, 'invalid_response')
  t.match((error as Error).message, /state/)
})

t.test('a callback naming another issuer is refused (RFC 9207)', async (t) => {
  const storage = new MemoryStorage()
  const options = { issuer, clientId, redirectUri, storage }
  const url = await beginRedirectSignIn(options)
  const forged = `${redirectUri}?code=abc&state=${url.searchParams.get('state')}&iss=${encodeURIComponent('https://evil.test')}`
  const error = await completeRedirectSignIn({ ...options, url: forged }).catch((e: unknown) => e)
  t.equal((error as AuthError).code, 'invalid_response')
  t.match((error as Error).message, /iss/)
})

t.test('Deny comes back as AuthorizationResponseError access_denied', async (t) => {
  const storage = new MemoryStorage()
  const options = { issuer, clientId, redirectUri, storage }
  // A user who has not consented: a new one.
  const other = await signup(auth.app, { label: 'deny' })
  user.email = other.email
  const url = await beginRedirectSignIn({ ...options, scope: 'openid email' })
  const callback = await browse(url, 'deny')
  const error = await completeRedirectSignIn({ ...options, url: callback }).catch((e: unknown) => e)
  t.ok(error instanceof AuthorizationResponseError, String(error))
  t.equal((error as AuthorizationResponseError).error, 'access_denied')
  t.equal((error as AuthorizationResponseError).code, (error as AuthorizationResponseError).code)
  t.comment(`code=${(error as AuthError).code} message=${(error as Error).message}`)
})

t.test('a spent code: ApiRequestError invalid_grant from the token endpoint', async (t) => {
  const storage = new MemoryStorage()
  const options = { issuer, clientId, redirectUri, storage }
  const url = await beginRedirectSignIn({ ...options, scope: 'openid' })
  const callback = await browse(url, 'allow')
  const pending = [...storage.map.entries()][0]!
  await completeRedirectSignIn({ ...options, url: callback })
  storage.map.set(pending[0], pending[1]) // as if the pending sign-in had been kept
  const error = await completeRedirectSignIn({ ...options, url: callback }).catch((e: unknown) => e)
  t.equal((error as AuthError).name, 'ApiRequestError')
  t.equal((error as AuthError).code, 'invalid_grant')
  t.equal((error as AuthError).status, 400)
})

t.test('an unreachable issuer: NetworkError', async (t) => {
  const error = await beginRedirectSignIn({ issuer: 'http://127.0.0.1:9', clientId, redirectUri, storage: new MemoryStorage() }).catch((e: unknown) => e)
  t.equal((error as AuthError).name, 'NetworkError')
})
