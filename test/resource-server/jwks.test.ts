import t, { type Test } from 'tap'
import { metadataUrl } from '../../src/resource-server/index.js'
import { bearer, FakeIssuer, newKey, resourceApp, sleep, type SigningKey } from './fake-issuer.js'

/**
 * How the plugin gets the issuer's keys: RFC 8414 discovery, jose's remote
 * JWKS with its cache, a refetch for an unknown kid held back by a
 * cool-down, and the keys it already has kept in use while the issuer is
 * down.
 */

async function started (t: Test, keys: SigningKey[]): Promise<FakeIssuer> {
  const issuer = await new FakeIssuer().start()
  issuer.published = keys
  t.teardown(() => issuer.stop())
  return issuer
}

t.test('discovery: metadata once, keys fetched at start, then verification is offline', async (t) => {
  const key = await newKey()
  const issuer = await started(t, [key])
  const app = await resourceApp(issuer)
  t.teardown(() => app.close())
  t.equal(issuer.counts.metadata, 1, 'metadata fetched at start')
  t.equal(issuer.counts.jwks, 1, 'keys fetched at start')
  for (let i = 0; i < 20; i++) {
    const response = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign()) })
    t.equal(response.statusCode, 200)
  }
  t.equal(issuer.counts.metadata, 1, 'not again')
  t.equal(issuer.counts.jwks, 1, 'known keys: no fetch per request')
  t.equal(app.resourceServer.keys.fetches, 1)
})

t.test('RFC 8414: the metadata URL of an issuer with a path, and metadata naming another issuer is not used', async (t) => {
  t.equal(metadataUrl('https://auth.example.com'), 'https://auth.example.com/.well-known/oauth-authorization-server')
  t.equal(metadataUrl('https://auth.example.com/'), 'https://auth.example.com/.well-known/oauth-authorization-server')
  t.equal(metadataUrl('https://example.com/tenant1'), 'https://example.com/.well-known/oauth-authorization-server/tenant1')

  const issuer = await started(t, [await newKey()])
  issuer.metadataIssuer = 'https://evil.test'
  const app = await resourceApp(issuer)
  t.teardown(() => app.close())
  const response = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign()) })
  t.equal(response.statusCode, 503, 'mismatched metadata: nothing to verify with')
  t.equal(issuer.counts.jwks, 0, 'the jwks_uri of mismatched metadata is never fetched')
  t.ok(response.headers['retry-after'])
  t.notOk(response.headers['www-authenticate'], 'the credential is not blamed')
})

t.test('configured endpoints skip discovery', async (t) => {
  const issuer = await started(t, [await newKey()])
  const app = await resourceApp(issuer, {
    endpoints: { jwksUri: `${issuer.issuer}/.well-known/jwks.json`, introspectionEndpoint: `${issuer.issuer}/auth/introspect` },
  })
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign()) })).statusCode, 200)
  t.equal(issuer.counts.metadata, 0)
  t.equal(issuer.counts.jwks, 1)
})

t.test('an unknown kid refetches the keys, at most once per cool-down however many bad kids arrive', async (t) => {
  const first = await newKey()
  const issuer = await started(t, [first])
  const cooldownMs = 1_000
  const app = await resourceApp(issuer, { jwks: { cooldownMs } })
  t.teardown(() => app.close())
  t.equal(issuer.counts.jwks, 1)

  // Tokens under kids the issuer never published, signed beforehand.
  const attacker = await newKey()
  const flood = async (n: number) => Promise.all(Array.from({ length: n }, (_, i) => issuer.sign({}, { key: { ...attacker, kid: `bogus-${i}-${Math.random()}` } })))
  const floodA = await flood(50)
  const floodB = await flood(50)

  // A key published after our last fetch: its first token makes us refetch.
  await sleep(cooldownMs + 100)
  const second = await newKey()
  issuer.published = [first, second]
  const rotated = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({}, { key: second })) })
  t.equal(rotated.statusCode, 200, 'a newly published key is found by a refetch')
  t.equal(issuer.counts.jwks, 2)

  // Right after that fetch, 50 unknown kids cause no fetch at all.
  const answersA = await Promise.all(floodA.map((token) => app.inject({ method: 'GET', url: '/any', headers: bearer(token) })))
  t.ok(answersA.every((r) => r.statusCode === 401 && /unknown key/.test(String(r.headers['www-authenticate']))), 'all refused as unknown keys')
  t.equal(issuer.counts.jwks, 2, 'within the cool-down: no fetch')

  // After the cool-down, 50 more cause exactly one.
  await sleep(cooldownMs + 100)
  const answersB = await Promise.all(floodB.map((token) => app.inject({ method: 'GET', url: '/any', headers: bearer(token) })))
  t.ok(answersB.every((r) => r.statusCode === 401), 'all refused')
  t.equal(issuer.counts.jwks, 3, 'one refetch for the whole flood')

  // The price of the cool-down: a key published just after a fetch waits for it to pass.
  const third = await newKey()
  issuer.published = [first, second, third]
  const early = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({}, { key: third })) })
  t.equal(early.statusCode, 401, 'a brand-new kid within the cool-down is refused')
  await sleep(cooldownMs + 100)
  const later = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({}, { key: third })) })
  t.equal(later.statusCode, 200, 'and accepted once it has passed')
  t.equal(issuer.counts.jwks, 4)
})

t.test('the key set expires after cacheMaxAge and is fetched again', async (t) => {
  const key = await newKey()
  const issuer = await started(t, [key])
  const app = await resourceApp(issuer, { jwks: { cacheMaxAgeMs: 300 } })
  t.teardown(() => app.close())
  const token = await issuer.sign()
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 200)
  const fetched = issuer.counts.jwks
  await sleep(400)
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 200)
  t.equal(issuer.counts.jwks, fetched + 1, 'refetched once stale')

  // A key the issuer has withdrawn stops working after the next fetch.
  issuer.published = [await newKey()]
  await sleep(400)
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 401, 'withdrawn key refused')
})

t.test('issuer down: the keys already fetched keep verifying; the down issuer is not asked on every request', async (t) => {
  const key = await newKey()
  const issuer = await started(t, [key])
  const app = await resourceApp(issuer, { jwks: { cacheMaxAgeMs: 200, failureBackoffMs: 60_000 } })
  t.teardown(() => app.close())
  const token = await issuer.sign()
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 200)

  issuer.mode = 'error'
  const fetched = issuer.counts.jwks
  await sleep(300) // the cached set is now stale
  for (let i = 0; i < 10; i++) {
    const response = await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })
    t.equal(response.statusCode, 200, 'stale keys still verify')
  }
  t.equal(issuer.counts.jwks, fetched + 1, 'one failed refetch, then backing off')
  const unknown = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({}, { key: await newKey() })) })
  t.equal(unknown.statusCode, 401, 'an unknown kid is still refused as invalid')
  t.equal(issuer.counts.jwks, fetched + 1, 'and asks nothing of the down issuer')
})

t.test('no keys yet and the issuer down: 503 with Retry-After, then it recovers by itself', async (t) => {
  const issuer = await started(t, [await newKey()])
  issuer.mode = 'error'
  const app = await resourceApp(issuer, { jwks: { failureBackoffMs: 300 } })
  t.teardown(() => app.close())
  const token = await issuer.sign()
  const down = await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })
  t.equal(down.statusCode, 503, 'cannot verify: unavailable, not invalid')
  t.equal(down.headers['retry-after'], '1')
  t.equal(down.json().code, 'temporarily_unavailable')
  issuer.mode = 'up'
  await sleep(400)
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })).statusCode, 200, 'recovered')
})

t.test('a hanging issuer costs at most the timeout', async (t) => {
  const issuer = await started(t, [await newKey()])
  issuer.mode = 'hang'
  const app = await resourceApp(issuer, { timeoutMs: 300, prefetch: false })
  t.teardown(() => app.close())
  const started_ = Date.now()
  const response = await app.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign()) })
  t.equal(response.statusCode, 503)
  t.ok(Date.now() - started_ < 2_000, `answered in ${Date.now() - started_} ms`)
})
