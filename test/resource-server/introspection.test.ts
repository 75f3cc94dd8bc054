import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import { tokenDigest } from '../../src/resource-server/index.js'
import { bearer, FakeIssuer, newKey, resourceApp, sleep } from './fake-issuer.js'

/**
 * API keys and sensitive routes through RFC 7662 introspection: the request
 * the plugin sends, its short positive and negative cache (TTLs on an
 * injected clock), what counts as an API key, and failing closed when the
 * issuer cannot answer.
 */

class Clock {
  offset = 0
  now = () => Date.now() + this.offset
  advance (ms: number) {
    this.offset += ms
  }
}

const READ_KEY = 'tak_readKey0000000000000000000000000000000000000000000'
const WRITE_KEY = 'tak_writeKey000000000000000000000000000000000000000000'

async function setup (t: Test, options: { positiveTtlMs?: number; negativeTtlMs?: number; sensitiveTtlMs?: number; maxEntries?: number; timeoutMs?: number } = {}) {
  const issuer = await new FakeIssuer().start()
  issuer.published = [await newKey()]
  const live = new Map<string, Record<string, unknown>>([
    [READ_KEY, { active: true, token_type: 'api_key', sub: 'owner-1', scope: 'links:read' }],
    [WRITE_KEY, { active: true, token_type: 'api_key', sub: 'owner-2', scope: 'links:read links:write', exp: Math.floor(Date.now() / 1000) + 3600 }],
  ])
  issuer.introspection = (token) => ({ body: live.get(token) ?? { active: false } })
  const clock = new Clock()
  const { timeoutMs, ...ttls } = options
  const app = await resourceApp(issuer, {
    now: clock.now,
    ...(timeoutMs ? { timeoutMs } : {}),
    introspection: { credential: 'tak_introspector', ...ttls },
  })
  t.teardown(async () => {
    await app.close()
    await issuer.stop()
  })
  return { issuer, app, clock, live }
}

t.test('an API key is introspected once, then served from the cache for the positive TTL', async (t) => {
  const { issuer, app, clock, live } = await setup(t, { positiveTtlMs: 30_000 })
  const first = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })
  t.equal(first.statusCode, 200, first.body)
  t.same(first.json(), { kind: 'api_key', userId: 'owner-1', scopes: ['links:read'], sessionId: null, expiresAt: null })
  t.equal(issuer.counts.introspection, 1)
  t.equal(issuer.lastIntrospection?.authorization, 'Bearer tak_introspector', 'the service authenticates with its own key')
  t.equal(issuer.lastIntrospection?.body.get('token'), READ_KEY)
  t.equal(issuer.lastIntrospection?.body.get('token_type_hint'), 'api_key')

  const viaBearer = await app.inject({ method: 'GET', url: '/keys', headers: bearer(READ_KEY) })
  t.equal(viaBearer.statusCode, 200, 'Authorization: Bearer tak_… works the same')
  t.equal(issuer.counts.introspection, 1, 'cached')

  // Revoked at the issuer: still accepted until the positive TTL runs out, then refused.
  live.delete(READ_KEY)
  clock.advance(29_000)
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })).statusCode, 200, 'within the TTL')
  t.equal(issuer.counts.introspection, 1)
  clock.advance(1_001)
  const revoked = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })
  t.equal(revoked.statusCode, 401, 'refused once the TTL has passed')
  t.match(revoked.headers['www-authenticate'], /error="invalid_token", error_description="the API key is invalid, expired or revoked"/)
  t.equal(issuer.counts.introspection, 2)
})

t.test('scopes of API keys: links:read cannot write; links:write can', async (t) => {
  const { app } = await setup(t)
  const refused = await app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': READ_KEY } })
  t.equal(refused.statusCode, 403)
  t.match(refused.headers['www-authenticate'], /error="insufficient_scope".*scope="links:write"/)
  const allowed = await app.inject({ method: 'POST', url: '/keys', headers: { 'x-api-key': WRITE_KEY } })
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.json().userId, 'owner-2')
  t.type(allowed.json().expiresAt, 'number')
})

t.test('unknown keys are remembered for the negative TTL only', async (t) => {
  const { issuer, app, clock, live } = await setup(t, { negativeTtlMs: 5_000 })
  const unknown = 'tak_notYetCreated00000000000000000000000000000000000000'
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': unknown } })).statusCode, 401)
  }
  t.equal(issuer.counts.introspection, 1, 'five refusals, one question')
  // The key is created now: it works once the negative entry has expired.
  live.set(unknown, { active: true, token_type: 'api_key', sub: 'owner-3', scope: 'links:read' })
  clock.advance(4_000)
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': unknown } })).statusCode, 401, 'still remembered as unknown')
  clock.advance(1_001)
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': unknown } })).statusCode, 200, 'asked again after 5 s')
  t.equal(issuer.counts.introspection, 2)
})

t.test('the cache is keyed by a digest of the key, bounded, and shared by concurrent requests', async (t) => {
  const { issuer, app, live } = await setup(t, { maxEntries: 5 })
  await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })
  const cached = app.resourceServer.introspector!.cachedKeys()
  t.same(cached, [tokenDigest(READ_KEY)])
  t.notOk(cached.some((k) => k.includes('tak_')), 'no raw key in the map')

  for (let i = 0; i < 20; i++) {
    await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': `tak_bogus${i}` } })
  }
  t.equal(app.resourceServer.introspector!.cachedKeys().length, 5, 'bounded')

  // Twenty requests at once for an uncached key: one introspection request.
  const slowKey = 'tak_slowKey00000000000000000000000000000000000000000000'
  live.set(slowKey, { active: true, token_type: 'api_key', sub: 'owner-9', scope: 'links:read' })
  const previous = issuer.introspection
  issuer.introspection = async (token, seen) => {
    await sleep(100)
    return previous(token, seen)
  }
  const before = issuer.counts.introspection
  const answers = await Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': slowKey } })))
  t.ok(answers.every((r) => r.statusCode === 200))
  t.equal(issuer.counts.introspection - before, 1, 'single flight')
})

t.test('only API keys count as API keys: refresh and access tokens sent as keys are refused', async (t) => {
  const { issuer, app } = await setup(t)
  issuer.introspection = (token) =>
    token.startsWith('tak_')
      ? { body: { active: true, token_type: 'refresh_token', sub: 'owner-1', scope: 'links:read', sid: 's1' } }
      : { body: { active: true, token_type: 'access_token', sub: 'owner-1', scope: 'links:read', sid: 's1' } }
  const refresh = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': 'tak_looksLikeAKeyButIsNot000000000000000000000000000' } })
  t.equal(refresh.statusCode, 401, 'token_type refresh_token')
  const jwtAsKey = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': await issuer.sign() } })
  t.equal(jwtAsKey.statusCode, 401, 'an access token in X-API-Key')
  issuer.introspection = () => ({ body: { active: true, scope: 'links:read' } })
  const noSub = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': 'tak_noSub' } })
  t.equal(noSub.statusCode, 401, 'no sub, no token_type')
  issuer.introspection = () => ({ body: { active: 'true', token_type: 'api_key', sub: 'x', scope: 'links:read' } })
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': 'tak_stringActive' } })).statusCode, 401, 'active must be the boolean true')
})

t.test('introspection failures: 503 with Retry-After, never cached, never a 401', async (t) => {
  const { issuer, app } = await setup(t, { timeoutMs: 300 })
  for (const [status, what] of [
    [500, 'the issuer fails'],
    [401, 'our introspection credential is refused'],
    [403, 'our introspection credential lacks the scope'],
  ] as const) {
    issuer.introspection = () => ({ status, body: { error: 'nope' } })
    const response = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })
    t.equal(response.statusCode, 503, what)
    t.ok(response.headers['retry-after'], `${what}: Retry-After`)
    t.notOk(response.headers['www-authenticate'], `${what}: the key is not blamed`)
  }
  const calls = issuer.counts.introspection
  issuer.introspection = () => ({ body: { active: true, token_type: 'api_key', sub: 'owner-1', scope: 'links:read' } })
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })).statusCode, 200, 'recovers at once')
  t.equal(issuer.counts.introspection, calls + 1, 'the failures were not cached')

  issuer.introspection = () => new Promise(() => {})
  const started = Date.now()
  const hung = await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': 'tak_neverAnswered' } })
  t.equal(hung.statusCode, 503, 'no answer within the timeout')
  t.ok(Date.now() - started < 2_000, `gave up after ${Date.now() - started} ms`)
})

t.test('a positive answer is not reused past the key\'s own exp', async (t) => {
  const { issuer, app, clock, live } = await setup(t, { positiveTtlMs: 30_000 })
  const expiring = 'tak_expiring0000000000000000000000000000000000000000000'
  live.set(expiring, { active: true, token_type: 'api_key', sub: 'owner-1', scope: 'links:read', exp: Math.floor(clock.now() / 1000) + 2 })
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': expiring } })).statusCode, 200)
  live.delete(expiring)
  clock.advance(3_000)
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': expiring } })).statusCode, 401, 'asked again at exp')
  t.equal(issuer.counts.introspection, 2)
})

t.test('sensitive routes ask the issuer whether an access token\'s session is live', async (t) => {
  const { issuer, app, clock } = await setup(t, { sensitiveTtlMs: 1_000 })
  const revoked = new Set<string>()
  issuer.introspection = (token) => {
    const claims = decodeJwt(token)
    if (revoked.has(String(claims.sid))) return { body: { active: false } }
    return { body: { active: true, token_type: 'access_token', sub: claims.sub, sid: claims.sid, scope: claims.scope, exp: claims.exp } }
  }
  const token = await issuer.sign({ sid: 'session-A', sub: 'user-A' })

  const offline = await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })
  t.equal(offline.statusCode, 200)
  t.equal(issuer.counts.introspection, 0, 'ordinary routes stay offline')

  const checked = await app.inject({ method: 'DELETE', url: '/sensitive', headers: bearer(token) })
  t.equal(checked.statusCode, 200, checked.body)
  t.equal(checked.json().introspected, true)
  t.equal(issuer.counts.introspection, 1)
  t.equal(issuer.lastIntrospection?.body.get('token_type_hint'), 'access_token')

  // The session is revoked at the issuer: refused as soon as the short sensitive TTL has passed.
  revoked.add('session-A')
  clock.advance(1_001)
  const refused = await app.inject({ method: 'DELETE', url: '/sensitive', headers: bearer(token) })
  t.equal(refused.statusCode, 401)
  t.match(refused.headers['www-authenticate'], /error="invalid_token", error_description="the access token was revoked"/)
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 200, 'offline routes accept it until exp: the documented trade-off')

  // An answer about another user or session does not vouch for this token.
  issuer.introspection = () => ({ body: { active: true, token_type: 'access_token', sub: 'someone-else', sid: 'session-B' } })
  const other = await issuer.sign({ sid: 'session-B', sub: 'user-B' })
  t.equal((await app.inject({ method: 'DELETE', url: '/sensitive', headers: bearer(other) })).statusCode, 401, 'sub mismatch')

  // The issuer unreachable: sensitive routes fail closed with 503; the others keep working.
  issuer.introspection = () => ({ status: 500, body: {} })
  const fresh = await issuer.sign({ sid: 'session-C', sub: 'user-C' })
  t.equal((await app.inject({ method: 'DELETE', url: '/sensitive', headers: bearer(fresh) })).statusCode, 503)
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(fresh) })).statusCode, 200)
})

t.test('sensitive routes hold API keys to the shorter TTL too', async (t) => {
  const { issuer, app, clock, live } = await setup(t, { positiveTtlMs: 30_000, sensitiveTtlMs: 1_000 })
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })).statusCode, 200)
  live.delete(READ_KEY)
  clock.advance(1_001)
  t.equal((await app.inject({ method: 'GET', url: '/keys', headers: { 'x-api-key': READ_KEY } })).statusCode, 200, 'ordinary route: cached for 30 s')
  t.equal((await app.inject({ method: 'DELETE', url: '/sensitive', headers: { 'x-api-key': READ_KEY } })).statusCode, 401, 'sensitive: asked again')
  t.equal(issuer.counts.introspection, 2)
})
