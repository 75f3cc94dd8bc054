import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { buildLinksApp } from '../../examples/links-service/src/app.js'
import { listeningTestApp } from '../helpers/app.js'
import { authorizeUrl, followAuthorization, PageBrowser, pkcePair } from '../helpers/oauth.js'
import { createTestDatabase, realPostgresUrl } from '../helpers/database.js'

/**
 * The auth service and the example links service (examples/links-service)
 * running together over real HTTP, both on Postgres (TEST_DATABASE_URL) or
 * both embedded: the platform's three clients walk through the links API
 * (an SPA user with the refresh cookie, a mobile user with body transport,
 * a third-party integration with scoped API keys), an admin sees everyone's
 * links, and with the auth service stopped the links service keeps
 * accepting valid tokens from the keys it already holds.
 */

const AUDIENCE = 'https://links.shortener.test'
const SPA_ORIGIN = 'http://spa.test'
const PASSWORD = 'a long links passphrase'
const POSITIVE_TTL_MS = 2_000
const SENSITIVE_TTL_MS = 200
const STREAM_STALE_AFTER_MS = 300

/** The auth service listening on the URL its ISSUER names, with the links scopes. */
const listeningAuth = () =>
  listeningTestApp(() => ({
    ACCESS_TOKEN_AUDIENCE: AUDIENCE,
    SCOPES: 'profile links:read links:write',
    CORS_ORIGINS: SPA_ORIGIN,
  }))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// The two databases start side by side (each is an in-process PGlite when embedded).
const [authStart, linksDbStart] = await Promise.allSettled([listeningAuth(), createTestDatabase({ migrated: false })])
if (authStart.status === 'rejected' || linksDbStart.status === 'rejected') {
  if (authStart.status === 'fulfilled') await authStart.value.close()
  if (linksDbStart.status === 'fulfilled') await linksDbStart.value.drop()
  throw authStart.status === 'rejected' ? authStart.reason : (linksDbStart as PromiseRejectedResult).reason
}
const auth = authStart.value
const { issuer } = auth
const linksDb = linksDbStart.value
// Declared before the teardown that closes it, assigned once the auth service is up.
let links: FastifyInstance | undefined // eslint-disable-line prefer-const
let authClosed = false
async function stopAuth () {
  if (authClosed) return
  authClosed = true
  // The links service's HTTP client may hold a connection it opened and never sent a request on (undici does, when
  // another connection freed first); Node counts it active until its headers timeout, and close would wait for it.
  auth.app.server.closeAllConnections()
  await auth.close()
}
t.teardown(async () => {
  await links?.close()
  await linksDb.drop()
  await stopAuth()
})

// --- talking to the auth service, as each client does ---------------------------------------------------------

interface TokenBody {
  access_token: string
  refresh_token?: string
  user?: { id: string }
}

async function authCall (path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${issuer}${path}`, {
    method: init.method ?? 'POST',
    headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  const text = await response.text()
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers }
}

function refreshCookie (headers: Headers): string {
  const cookie = headers.getSetCookie().find((c) => c.startsWith('__Secure-refresh_token='))
  if (!cookie) throw new Error(`no refresh cookie in ${JSON.stringify(headers.getSetCookie())}`)
  return cookie.split(';')[0]!
}

let emails = 0
const newEmail = (label: string) => `${label}-${++emails}-${randomUUID().slice(0, 8)}@links.test`

async function passwordGrant (email: string, clientId: string): Promise<TokenBody> {
  const response = await authCall('/auth/token', { body: { grant_type: 'password', username: email, password: PASSWORD, client_id: clientId } })
  if (response.status !== 200) throw new Error(`login: ${response.status} ${JSON.stringify(response.body)}`)
  return response.body as unknown as TokenBody
}

async function createApiKey (accessToken: string, scopes: string[]): Promise<{ id: string; key: string }> {
  // The owner has verified their address, as the service requires before a key (setup, not this example's flow).
  await auth.app.db.user.updateMany({ where: { id: decodeJwt(accessToken).sub!, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date() } })
  const response = await authCall('/api-keys', { body: { name: `key ${scopes.join(' ')}`, scopes }, headers: { authorization: `Bearer ${accessToken}` } })
  if (response.status !== 201) throw new Error(`api key: ${response.status} ${JSON.stringify(response.body)}`)
  return response.body as { id: string; key: string }
}

// --- the admin, whose introspect-scoped key the links service calls with -------------------------------------------

const adminEmail = newEmail('admin')
const adminSignup = await authCall('/auth/signup', { body: { email: adminEmail, password: PASSWORD } })
if (adminSignup.status !== 201) throw new Error(`admin signup: ${JSON.stringify(adminSignup.body)}`)
// Promoted as admin:create does, which also vouches for the address (an API key needs a verified one).
await auth.app.db.user.update({ where: { email: adminEmail }, data: { role: 'admin', emailVerifiedAt: new Date() } })
const admin = await passwordGrant(adminEmail, 'mobile')
const adminId = decodeJwt(admin.access_token).sub!
const introspectionKey = (await createApiKey(admin.access_token, ['introspect', 'events'])).key

// --- the links service, on its own database -------------------------------------------------------------------------

links = await buildLinksApp({
  port: 0,
  host: '127.0.0.1',
  databaseUrl: linksDb.url,
  databasePoolMax: linksDb.poolMax,
  issuer,
  audience: AUDIENCE,
  introspectionKey,
  publicBaseUrl: 'https://sho.rt',
  logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
  auth: {
    introspection: { credential: introspectionKey, positiveTtlMs: POSITIVE_TTL_MS, sensitiveTtlMs: SENSITIVE_TTL_MS },
    // The security-event stream counts as down this soon after it fails (the last test stops the auth service).
    events: { staleAfterMs: STREAM_STALE_AFTER_MS },
  },
})
await links.listen({ port: 0, host: '127.0.0.1' })
const linksUrl = `http://127.0.0.1:${(links.server.address() as AddressInfo).port}`

interface LinkBody {
  code: string
  url: string
  shortUrl: string
  ownerId: string
  createdVia: string
}

async function linksCall (
  path: string,
  init: { method?: string; token?: string; apiKey?: string; body?: unknown } = {}
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers: Record<string, string> = {}
  if (init.token) headers.authorization = `Bearer ${init.token}`
  if (init.apiKey) headers['x-api-key'] = init.apiKey
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${linksUrl}${path}`, {
    method: init.method ?? 'GET',
    headers,
    redirect: 'manual',
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  const text = await response.text()
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers }
}

const codesOf = (body: Record<string, unknown>) => (body.items as LinkBody[]).map((l) => l.code).sort()

// Shared between the subtests, which run in order.
const spa = { userId: '', accessToken: '', cookie: '', codes: [] as string[] }
const mobile = { userId: '', accessToken: '', refreshToken: '', codes: [] as string[] }

t.test('discovery: the links service found the issuer\'s keys at start, and its security-event stream', async (t) => {
  t.equal(links.resourceServer.keys.fetches, 1, 'keys fetched once')
  await links.resourceServer.events!.whenHealthy(10_000)
  const health = await linksCall('/health')
  t.equal(health.status, 200)
  t.same(health.body, { status: 'ok', securityEvents: 'healthy' })
  const anonymous = await linksCall('/links')
  t.equal(anonymous.status, 401)
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="links"')
})

t.test('SPA user: cookie transport, access token in memory to the links API, refresh through the cookie', async (t) => {
  const email = newEmail('spa')
  const signup = await authCall('/auth/signup', {
    body: { email, password: PASSWORD, client_id: 'web' },
    headers: { origin: SPA_ORIGIN, 'x-requested-with': 'XMLHttpRequest' },
  })
  t.equal(signup.status, 201, JSON.stringify(signup.body))
  t.notOk('refresh_token' in signup.body, 'the refresh token is not in the body')
  spa.cookie = refreshCookie(signup.headers)
  spa.accessToken = String(signup.body.access_token)
  spa.userId = (signup.body.user as { id: string }).id

  const created = await linksCall('/links', { method: 'POST', token: spa.accessToken, body: { url: 'https://example.com/spa/article?x=1' } })
  t.equal(created.status, 201, JSON.stringify(created.body))
  const link = created.body as unknown as LinkBody
  t.match(link.code, /^[0-9A-Za-z]{7}$/)
  t.equal(link.url, 'https://example.com/spa/article?x=1')
  t.equal(link.shortUrl, `https://sho.rt/${link.code}`)
  t.equal(link.ownerId, spa.userId)
  t.equal(link.createdVia, 'user')
  spa.codes.push(link.code)

  // The access token expires; the SPA refreshes with the cookie (Origin + X-Requested-With), then calls again.
  const refreshed = await authCall('/auth/token', {
    body: { grant_type: 'refresh_token', client_id: 'web' },
    headers: { cookie: spa.cookie, origin: SPA_ORIGIN, 'x-requested-with': 'XMLHttpRequest' },
  })
  t.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
  t.not(refreshed.body.access_token, spa.accessToken)
  spa.accessToken = String(refreshed.body.access_token)
  spa.cookie = refreshCookie(refreshed.headers)

  const second = await linksCall('/links', { method: 'POST', token: spa.accessToken, body: { url: 'http://example.org/' } })
  t.equal(second.status, 201)
  spa.codes.push((second.body as unknown as LinkBody).code)
  const list = await linksCall('/links', { token: spa.accessToken })
  t.equal(list.status, 200)
  t.same(codesOf(list.body), [...spa.codes].sort(), 'the user sees their own links')

  // Resolving is public.
  const resolved = await linksCall(`/links/${link.code}`)
  t.equal(resolved.status, 200)
  t.same(resolved.body, { code: link.code, url: 'https://example.com/spa/article?x=1' })
  const redirect = await linksCall(`/${link.code}`)
  t.equal(redirect.status, 302)
  t.equal(redirect.headers.get('location'), 'https://example.com/spa/article?x=1')
  t.equal((await linksCall('/links/zzzzzzz')).status, 404)

  // Input validation.
  for (const url of ['javascript:alert(1)', 'ftp://example.com/x', 'not a url', '/relative', 'https://user:pw@example.com/', `https://example.com/${'a'.repeat(2100)}`]) {
    const refused = await linksCall('/links', { method: 'POST', token: spa.accessToken, body: { url } })
    t.equal(refused.status, 400, `refused: ${url.slice(0, 40)}`)
  }
  t.equal((await linksCall('/links', { method: 'POST', token: spa.accessToken, body: { url: 'https://a.test', owner: 'x' } })).status, 400, 'unknown field')
  t.equal((await linksCall('/links', { method: 'POST', token: spa.accessToken, body: {} })).status, 400, 'missing url')
})

t.test('mobile user: body transport, refresh, then the links API; other users\' links are out of reach', async (t) => {
  const email = newEmail('mobile')
  const signup = await authCall('/auth/signup', { body: { email, password: PASSWORD, client_id: 'mobile' } })
  t.equal(signup.status, 201)
  mobile.userId = (signup.body.user as { id: string }).id
  t.type(signup.body.refresh_token, 'string', 'the refresh token is in the body')

  const refreshed = await authCall('/auth/token', { body: { grant_type: 'refresh_token', refresh_token: signup.body.refresh_token, client_id: 'mobile' } })
  t.equal(refreshed.status, 200)
  mobile.accessToken = String(refreshed.body.access_token)
  mobile.refreshToken = String(refreshed.body.refresh_token)
  t.equal(decodeJwt(mobile.accessToken).client_id, 'mobile')

  for (const url of ['https://mobile.example/1', 'https://mobile.example/2', 'https://mobile.example/3']) {
    const created = await linksCall('/links', { method: 'POST', token: mobile.accessToken, body: { url } })
    t.equal(created.status, 201)
    mobile.codes.push((created.body as unknown as LinkBody).code)
  }
  const page1 = await linksCall('/links?limit=2', { token: mobile.accessToken })
  t.equal(page1.status, 200)
  t.equal((page1.body.items as unknown[]).length, 2)
  t.type(page1.body.nextCursor, 'string')
  const page2 = await linksCall(`/links?limit=2&cursor=${String(page1.body.nextCursor)}`, { token: mobile.accessToken })
  t.equal((page2.body.items as unknown[]).length, 1)
  t.equal(page2.body.nextCursor, null)
  t.same([...codesOf(page1.body), ...codesOf(page2.body)].sort(), [...mobile.codes].sort(), 'newest first, in pages, only their own')
  t.equal((await linksCall('/links?cursor=garbage', { token: mobile.accessToken })).status, 400)

  // The SPA user's link: not theirs to delete (and not disclosed), not in their list, not for ?all=true.
  const foreign = await linksCall(`/links/${spa.codes[0]}`, { method: 'DELETE', token: mobile.accessToken })
  t.equal(foreign.status, 404)
  t.equal((await linksCall(`/links/${spa.codes[0]}`)).status, 200, 'still there')
  const all = await linksCall('/links?all=true', { token: mobile.accessToken })
  t.equal(all.status, 403, 'only admins see everyone\'s')

  const gone = mobile.codes.pop()!
  t.equal((await linksCall(`/links/${gone}`, { method: 'DELETE', token: mobile.accessToken })).status, 204, 'their own link')
  t.equal((await linksCall(`/links/${gone}`)).status, 404, 'no longer resolves')
})

t.test('a token without the links scopes is refused with 403 insufficient_scope', async (t) => {
  const narrowed = await authCall('/auth/token', { body: { grant_type: 'refresh_token', refresh_token: mobile.refreshToken, client_id: 'mobile', scope: 'profile' } })
  t.equal(narrowed.status, 200, JSON.stringify(narrowed.body))
  mobile.refreshToken = String(narrowed.body.refresh_token)
  const response = await linksCall('/links', { token: String(narrowed.body.access_token) })
  t.equal(response.status, 403)
  t.equal(response.headers.get('www-authenticate'), 'Bearer realm="links", error="insufficient_scope", error_description="requires scope links:read", scope="links:read"')
})

t.test('third-party integration: API keys with links:read or links:write act for their owner; a revoked key is refused within the cache bound', async (t) => {
  const reader = await createApiKey(spa.accessToken, ['links:read'])
  const writer = await createApiKey(spa.accessToken, ['links:read', 'links:write'])

  const read = await linksCall('/links', { apiKey: reader.key })
  t.equal(read.status, 200)
  t.same(codesOf(read.body), [...spa.codes].sort(), 'the key sees its owner\'s links')
  const bearerRead = await fetch(`${linksUrl}/links`, { headers: { authorization: `Bearer ${reader.key}` } })
  t.equal(bearerRead.status, 200, 'Authorization: Bearer tak_… works too')

  const cannotWrite = await linksCall('/links', { method: 'POST', apiKey: reader.key, body: { url: 'https://nope.test' } })
  t.equal(cannotWrite.status, 403)
  t.match(cannotWrite.headers.get('www-authenticate'), /error="insufficient_scope".*scope="links:write"/)

  const created = await linksCall('/links', { method: 'POST', apiKey: writer.key, body: { url: 'https://integration.example/x' } })
  t.equal(created.status, 201)
  const link = created.body as unknown as LinkBody
  t.equal(link.ownerId, spa.userId, 'owned by the key\'s owner')
  t.equal(link.createdVia, 'api_key')
  const deleted = await linksCall(`/links/${link.code}`, { method: 'DELETE', apiKey: writer.key })
  t.equal(deleted.status, 204, 'links:write deletes its owner\'s links')
  t.equal((await linksCall(`/links/${mobile.codes[0]}`, { method: 'DELETE', apiKey: writer.key })).status, 404, 'but not another user\'s')
  t.equal((await linksCall('/links?all=true', { apiKey: writer.key })).status, 403, 'an API key never has admin rights')

  // A refresh token presented as an API key is refused: it is not one.
  t.equal((await linksCall('/links', { apiKey: mobile.refreshToken })).status, 401)
  t.equal((await linksCall('/links', { apiKey: 'tak_madeUp' })).status, 401)

  // Revocation at the auth service reaches the links service within the positive cache TTL.
  t.equal((await linksCall('/links', { apiKey: reader.key })).status, 200, 'cached as active')
  const revoked = await authCall(`/api-keys/${reader.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${spa.accessToken}` } })
  t.equal(revoked.status, 204)
  const revokedAt = Date.now()
  let status = 200
  while (status === 200 && Date.now() - revokedAt < POSITIVE_TTL_MS + 3_000) {
    status = (await linksCall('/links', { apiKey: reader.key })).status
    if (status === 200) await sleep(100)
  }
  const elapsed = Date.now() - revokedAt
  t.equal(status, 401, 'the revoked key is refused')
  t.ok(elapsed <= POSITIVE_TTL_MS + 1_000, `within the cache bound: ${elapsed} ms (positive TTL ${POSITIVE_TTL_MS} ms)`)
  t.equal((await linksCall('/links', { apiKey: writer.key })).status, 200, 'the other key still works')
})

t.test('admin: sees and deletes everyone\'s links; a sensitive route refuses a logged-out session at once', async (t) => {
  const all = await linksCall('/links?all=true&limit=100', { token: admin.access_token })
  t.equal(all.status, 200, JSON.stringify(all.body))
  const owners = new Set((all.body.items as LinkBody[]).map((l) => l.ownerId))
  t.ok(owners.has(spa.userId) && owners.has(mobile.userId), 'links of both users')
  t.same(codesOf(all.body), [...spa.codes, ...mobile.codes].sort())
  const own = await linksCall('/links', { token: admin.access_token })
  t.same(own.body.items, [], 'without ?all, an admin sees their own (none)')
  const removed = await linksCall(`/links/${mobile.codes[1]}`, { method: 'DELETE', token: admin.access_token })
  t.equal(removed.status, 204, 'an admin deletes another user\'s link')
  mobile.codes.pop()
  t.notOk(owners.has(adminId))

  // A second admin session, logged out: the security-event stream tells the links service within a second, and
  // every route refuses its token from then on, without an introspection call.
  const session = await passwordGrant(adminEmail, 'mobile')
  t.equal((await linksCall('/links', { token: session.access_token })).status, 200)
  const introspections = links.resourceServer.introspector!.requests
  const logout = await authCall('/auth/logout', { headers: { authorization: `Bearer ${session.access_token}` } })
  t.equal(logout.status, 204)
  const loggedOutAt = Date.now()
  let read = 200
  while (read === 200 && Date.now() - loggedOutAt < 3_000) read = (await linksCall('/links', { token: session.access_token })).status
  t.equal(read, 401, `an ordinary read refuses it ${Date.now() - loggedOutAt} ms after the logout`)
  t.ok(Date.now() - loggedOutAt < 1_500, 'within about a second')
  t.equal((await linksCall('/links?all=true', { token: session.access_token })).status, 401, 'admin listing too')
  t.equal(links.resourceServer.introspector!.requests, introspections, 'no introspection: the stream is healthy')
  const deleteAfterLogout = await linksCall(`/links/${spa.codes[1]}`, { method: 'DELETE', token: session.access_token })
  t.equal(deleteAfterLogout.status, 401)
  t.match(deleteAfterLogout.headers.get('www-authenticate'), /error="invalid_token", error_description="the access token was revoked"/)
})

t.test('a third-party app signed in through the authorization code flow: its access token works at the links service, within its scopes', async (t) => {
  const registered = await authCall('/admin/clients', {
    body: { client_name: 'Link Stats', redirect_uris: ['https://stats.example/callback'], scope: 'links:read', token_endpoint_auth_method: 'client_secret_basic' },
    headers: { authorization: `Bearer ${admin.access_token}` },
  })
  t.equal(registered.status, 201)
  const client = registered.body as { client_id: string; client_secret: string }
  const email = newEmail('third-party')
  t.equal((await authCall('/auth/signup', { body: { email, password: PASSWORD } })).status, 201)
  const browser = new PageBrowser(issuer)
  const pkce = pkcePair()
  const back = await followAuthorization(browser, authorizeUrl(issuer, {
    clientId: client.client_id, redirectUri: 'https://stats.example/callback', scope: 'openid links:read', state: 'st', codeChallenge: pkce.challenge,
  }), { email, password: PASSWORD })
  const exchanged = await fetch(`${issuer}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: 'https://stats.example/callback', code_verifier: pkce.verifier }),
  })
  t.equal(exchanged.status, 200)
  const tokens = await exchanged.json() as { access_token: string }
  t.equal(decodeJwt(tokens.access_token).aud, AUDIENCE, 'the access token is for the resource, not the client')
  const read = await linksCall('/links', { token: tokens.access_token })
  t.equal(read.status, 200, 'links:read lists the user\'s links')
  const write = await linksCall('/links', { method: 'POST', token: tokens.access_token, body: { url: 'https://example.com/stats' } })
  t.equal(write.status, 403, 'links:write was neither registered nor granted')
})

t.test('tokens signed by a key the issuer never published are refused', async (t) => {
  const { keys } = (await (await fetch(`${issuer}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }
  const { privateKey } = await generateKeyPair('ES256')
  const claims = decodeJwt(spa.accessToken)
  for (const kid of [keys[0]!.kid, randomUUID()]) {
    const forged = await new SignJWT({ ...claims, role: 'admin', jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .sign(privateKey)
    const response = await linksCall('/links?all=true', { token: forged })
    t.equal(response.status, 401, `forged under ${kid === keys[0]!.kid ? 'the published kid' : 'an unknown kid'}`)
    t.match(response.headers.get('www-authenticate'), /error="invalid_token"/)
  }
})

t.test('auth service down: valid tokens keep working offline; what needs the issuer answers 503', async (t) => {
  const forged = await new SignJWT({ ...decodeJwt(spa.accessToken), jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: randomUUID() })
    .sign((await generateKeyPair('ES256')).privateKey)

  await stopAuth()
  t.equal(await fetch(`${issuer}/health`).then(() => 'up', () => 'down'), 'down', 'the auth service is gone')
  await sleep(Math.max(SENSITIVE_TTL_MS, STREAM_STALE_AFTER_MS) + 300)
  t.equal((await linksCall('/health')).body.securityEvents, 'degraded', 'the stream is down: sensitive routes fall back to introspection')

  const list = await linksCall('/links', { token: spa.accessToken })
  t.equal(list.status, 200, 'the SPA user lists their links')
  t.same(codesOf(list.body), [...spa.codes].sort())
  const created = await linksCall('/links', { method: 'POST', token: mobile.accessToken, body: { url: 'https://offline.example/' } })
  t.equal(created.status, 201, 'the mobile user creates a link')
  t.equal((await linksCall(`/links/${(created.body as unknown as LinkBody).code}`)).status, 200, 'and it resolves')

  t.equal((await linksCall('/links', { token: forged })).status, 401, 'a token from an unpublished key is still refused')
  const sensitive = await linksCall(`/links/${spa.codes[0]}`, { method: 'DELETE', token: spa.accessToken })
  t.equal(sensitive.status, 503, 'a sensitive route cannot confirm the session: fails closed')
  t.ok(sensitive.headers.get('retry-after'))
  const unknownKey = await linksCall('/links', { apiKey: 'tak_neverSeenBefore000000000000000000000000000000000000' })
  t.equal(unknownKey.status, 503, 'an API key cannot be checked: 503, not 401')
  t.equal(links.resourceServer.keys.fetches >= 1, true)
  t.comment(`database: ${realPostgresUrl ? 'Postgres' : 'embedded PGlite'}`)
})
