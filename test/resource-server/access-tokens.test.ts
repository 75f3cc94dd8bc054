import { createHmac } from 'node:crypto'
import Fastify from 'fastify'
import { base64url } from 'jose'
import t, { type Test } from 'tap'
import resourceServerPlugin from '../../src/resource-server/index.js'
import { bearer, FakeIssuer, newKey, rawSignES256, resourceApp } from './fake-issuer.js'

/**
 * The resource-server plugin verifying RFC 9068 access tokens offline
 * against a local JWKS: what it accepts, the typed request.auth it sets, and
 * the RFC 6750 answers to everything it refuses.
 */

const issuer = await new FakeIssuer().start()
const signing = await newKey('ES256')
issuer.published = [signing]
const app = await resourceApp(issuer)
t.teardown(async () => {
  await app.close()
  await issuer.stop()
})

const INVALID = /^Bearer realm="links", error="invalid_token", error_description="[^"]+"$/

async function refusedAsInvalid (t: Test, token: string, what: string, description?: RegExp) {
  const response = await app.inject({ method: 'GET', url: '/any', headers: bearer(token) })
  t.equal(response.statusCode, 401, `${what}: 401`)
  t.match(response.headers['www-authenticate'], INVALID, `${what}: RFC 6750 invalid_token challenge`)
  if (description) t.match(response.headers['www-authenticate'], description, `${what}: says why`)
  t.equal(response.json().code, 'invalid_token')
}

t.test('a valid access token: request.auth is the typed user', async (t) => {
  const token = await issuer.sign({ sub: 'user-42', sid: 'sess-9', client_id: 'mobile', jti: 'jti-1', scope: 'profile links:read', role: 'admin' })
  // The exp that was signed (reading the issuer's clock again could land in the next second).
  const { exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }
  const response = await app.inject({ method: 'GET', url: '/read', headers: bearer(token) })
  t.equal(response.statusCode, 200, response.body)
  const auth = response.json()
  t.same(auth, {
    kind: 'user',
    userId: 'user-42',
    role: 'admin',
    scopes: ['profile', 'links:read'],
    sessionId: 'sess-9',
    clientId: 'mobile',
    tokenId: 'jti-1',
    expiresAt: exp,
    amr: [],
    introspected: false,
  })
  t.equal(issuer.counts.introspection, 0, 'offline: the issuer is not asked')
  // RFC 9068 §4: the long form of typ is the same media type.
  const longTyp = await issuer.sign({}, { header: { typ: 'application/at+jwt' } })
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(longTyp) })).statusCode, 200, 'typ application/at+jwt')
  // The auth scheme is case-insensitive (RFC 7235).
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: { authorization: `bearer ${token}` } })).statusCode, 200)
})

t.test('no credential: 401 with the bare challenge; malformed or doubled credentials: 400 invalid_request', async (t) => {
  const none = await app.inject({ method: 'GET', url: '/any' })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="links"', 'no error code without credentials (RFC 6750 §3.1)')
  const basic = await app.inject({ method: 'GET', url: '/any', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(basic.statusCode, 401)
  t.equal(basic.headers['www-authenticate'], 'Bearer realm="links"', 'another scheme is no bearer credential')

  const token = await issuer.sign()
  for (const [what, headers] of [
    ['two tokens in Authorization', { authorization: `Bearer ${token} ${token}` }],
    ['Bearer without a token', { authorization: 'Bearer' }],
    ['characters outside b64token', { authorization: 'Bearer abc"def' }],
    ['Authorization and X-API-Key', { ...bearer(token), 'x-api-key': 'tak_x' }],
    ['an empty X-API-Key', { 'x-api-key': '' }],
  ] as const) {
    const response = await app.inject({ method: 'GET', url: '/keys', headers })
    t.equal(response.statusCode, 400, `${what}: 400`)
    t.match(response.headers['www-authenticate'], /^Bearer realm="links", error="invalid_request"/, what)
  }
})

t.test('algorithm pinning: none, HS256 keyed with the public key, and other asymmetric algorithms are refused', async (t) => {
  const claims = base64url.encode(JSON.stringify(issuer.claims()))
  const noneToken = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: signing.kid }))}.${claims}.`
  await refusedAsInvalid(t, noneToken, 'alg none')

  // The classic confusion: HMAC with the published public key as the secret.
  for (const secret of [JSON.stringify(signing.publicJwk), String(signing.publicJwk.x)]) {
    const header = base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: signing.kid }))
    const mac = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url')
    await refusedAsInvalid(t, `${header}.${claims}.${mac}`, 'HS256 with the public key', /algorithm is not accepted/)
  }

  // Keys of another algorithm, even published ones, do not count: ES256 only by default.
  const es384 = await newKey('ES384')
  const eddsa = await newKey('EdDSA')
  issuer.published = [signing, es384, eddsa]
  try {
    await refusedAsInvalid(t, await issuer.sign({}, { key: es384 }), 'ES384', /algorithm is not accepted/)
    await refusedAsInvalid(t, await issuer.sign({}, { key: eddsa }), 'EdDSA', /algorithm is not accepted/)
    // A token that says ES256 under an EdDSA key's kid finds no ES256 key of that kid.
    const lying = await issuer.sign({}, { key: { ...signing, kid: eddsa.kid } })
    await refusedAsInvalid(t, lying, 'ES256 under the kid of an EdDSA key')
  } finally {
    issuer.published = [signing]
  }
})

t.test('issuer, audience, typ, expiry and required claims are enforced', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  await refusedAsInvalid(t, await issuer.sign({ iss: 'http://evil.test' }), 'wrong iss', /iss is not accepted/)
  await refusedAsInvalid(t, await issuer.sign({ aud: 'https://another-service.test' }), 'wrong aud', /aud is not accepted/)
  await refusedAsInvalid(t, await issuer.sign({}, { header: { typ: 'JWT' } }), 'typ JWT', /typ is not accepted/)
  await refusedAsInvalid(t, await issuer.sign({}, { header: { typ: undefined } }), 'no typ')
  await refusedAsInvalid(t, await issuer.sign({ iat: now - 700, exp: now - 60 }), 'expired', /expired/)
  await refusedAsInvalid(t, await issuer.sign({ nbf: now + 300 }), 'not before in the future', /not yet valid/)
  await refusedAsInvalid(t, await issuer.sign({ iat: now + 300, exp: now + 900 }), 'issued in the future', /not yet valid/)
  for (const claim of ['sub', 'exp', 'iat', 'jti', 'client_id', 'sid', 'aud', 'iss']) {
    await refusedAsInvalid(t, await issuer.sign({}, { omit: [claim] }), `without ${claim}`)
  }
  await refusedAsInvalid(t, await issuer.sign({ sub: 42 as unknown as string }), 'a numeric sub')
  await refusedAsInvalid(t, await issuer.sign({ scope: ['links:read'] as unknown as string }), 'scope not a string')
  const crit = rawSignES256({ typ: 'at+jwt', crit: ['urn:example:unknown'], 'urn:example:unknown': 1 }, issuer.claims(), signing)
  await refusedAsInvalid(t, crit, 'an unknown crit header')
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(rawSignES256({ typ: 'at+jwt' }, issuer.claims(), signing)) })).statusCode, 200, 'the same signed by hand without crit passes')
  // Clock skew within the tolerance (5 s) is accepted.
  const skewed = await issuer.sign({ iat: now + 2 })
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(skewed) })).statusCode, 200, 'iat 2 s ahead: tolerated')
})

t.test('tampering and keys the issuer never published are refused', async (t) => {
  const token = await issuer.sign({ sub: 'user-1', role: 'user' })
  const [header, , signature] = token.split('.')
  const forgedClaims = base64url.encode(JSON.stringify(issuer.claims({ sub: 'user-1', role: 'admin' })))
  await refusedAsInvalid(t, `${header}.${forgedClaims}.${signature}`, 'a tampered payload', /signature is invalid/)
  await refusedAsInvalid(t, `${token.slice(0, -4)}AAAA`, 'a tampered signature')

  // An attacker's key: under its own kid, under the published kid, and offered in jwk/jku/x5u headers.
  const attacker = await newKey('ES256')
  await refusedAsInvalid(t, await issuer.sign({}, { key: attacker }), 'an unknown kid', /unknown key/)
  await refusedAsInvalid(t, await issuer.sign({}, { key: { ...attacker, kid: signing.kid } }), 'the published kid, another key', /signature is invalid/)
  const { kid: _kid, ...attackerJwk } = attacker.publicJwk
  await refusedAsInvalid(t, await issuer.sign({}, { key: attacker, header: { jwk: attackerJwk } }), 'an embedded jwk')
  await refusedAsInvalid(t, await issuer.sign({}, { key: attacker, header: { jku: `${issuer.issuer}/attacker.json` } }), 'a jku header')
  await refusedAsInvalid(t, await issuer.sign({}, { key: attacker, header: { x5u: 'https://evil.test/cert.pem' } }), 'an x5u header')
  await refusedAsInvalid(t, 'not.a.jwt', 'garbage with two dots')
  await refusedAsInvalid(t, 'opaque-token', 'an opaque token')
})

t.test('scopes: missing ones give 403 insufficient_scope naming what the route needs', async (t) => {
  const token = await issuer.sign({ scope: 'profile' })
  const response = await app.inject({ method: 'GET', url: '/read', headers: bearer(token) })
  t.equal(response.statusCode, 403)
  t.equal(
    response.headers['www-authenticate'],
    'Bearer realm="links", error="insufficient_scope", error_description="requires scope links:read", scope="links:read"'
  )
  t.equal(response.json().code, 'insufficient_scope')
  const noScope = await issuer.sign({ scope: undefined })
  t.equal((await app.inject({ method: 'GET', url: '/read', headers: bearer(noScope) })).statusCode, 403, 'no scope claim: no scopes')
  t.equal((await app.inject({ method: 'GET', url: '/any', headers: bearer(noScope) })).statusCode, 200, 'fine where no scope is needed')
})

t.test('API keys where a route does not accept them: 401, and the issuer is not asked', async (t) => {
  const before = issuer.counts.introspection
  const response = await app.inject({ method: 'GET', url: '/read', headers: bearer('tak_somekey') })
  t.equal(response.statusCode, 401)
  t.match(response.headers['www-authenticate'], /API keys are not accepted here/)
  t.equal((await app.inject({ method: 'GET', url: '/read', headers: { 'x-api-key': 'tak_somekey' } })).statusCode, 401)
  t.equal(issuer.counts.introspection, before)
})

t.test('configuration mistakes fail at start, not at the first request', async (t) => {
  const register = async (options: Record<string, unknown>) => {
    const instance = Fastify()
    try {
      await instance.register(resourceServerPlugin, { issuer: issuer.issuer, audience: issuer.audience, prefetch: false, ...options })
      await instance.ready()
    } finally {
      await instance.close()
    }
  }
  await t.rejects(register({ algorithms: ['HS256'] }), /asymmetric/, 'HS256')
  await t.rejects(register({ algorithms: ['none'] }), /asymmetric/, 'none')
  await t.rejects(register({ algorithms: [] }), /asymmetric/, 'empty list')
  await t.rejects(register({ audience: '' }), /audience/)
  await t.rejects(register({ issuer: 'ftp://issuer.test' }), /http/)
  const noIntrospection = Fastify()
  await noIntrospection.register(resourceServerPlugin, { issuer: issuer.issuer, audience: issuer.audience, prefetch: false })
  t.throws(() => noIntrospection.requireAuth({ allowApiKeys: true }), /introspection/, 'API keys need introspection')
  t.throws(() => noIntrospection.requireAuth({ sensitive: true }), /introspection/, 'sensitive routes need introspection')
  t.throws(() => noIntrospection.requireAuth({ scopes: ['has space'] }), /scope/, 'scope tokens are checked')
  await noIntrospection.close()
})

t.test('several audiences and algorithms can be accepted', async (t) => {
  const eddsa = await newKey('EdDSA')
  issuer.published = [signing, eddsa]
  const wide = await resourceApp(issuer, { audience: ['https://old.resource.test', issuer.audience], algorithms: ['ES256', 'EdDSA'] })
  t.teardown(async () => {
    await wide.close()
    issuer.published = [signing]
  })
  t.equal((await wide.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({ aud: 'https://old.resource.test' })) })).statusCode, 200)
  t.equal((await wide.inject({ method: 'GET', url: '/any', headers: bearer(await issuer.sign({}, { key: eddsa })) })).statusCode, 200)
})
