import Fastify from 'fastify'
import { decodeJwt } from 'jose'
import t from 'tap'
import { ACR_MFA } from '../../src/shared/authentication-methods.js'
import resourceServerPlugin from '../../src/resource-server/index.js'
import { buildTestApp } from '../helpers/app.js'
import { PASSWORD, signup } from '../helpers/users.js'
import { bearer, FakeIssuer, newKey } from './fake-issuer.js'

/**
 * requireAuth({ acr, maxAge }): the plugin judges how and when the user
 * authenticated (the amr, acr and auth_time claims) and refuses with RFC
 * 9470's insufficient_user_authentication and a challenge naming what would do.
 */

const issuer = await new FakeIssuer().start()
issuer.published = [await newKey('ES256')]
let clock = Date.now()
const app = Fastify({ logger: false })
await app.register(resourceServerPlugin, { issuer: issuer.issuer, audience: issuer.audience, realm: 'links', now: () => clock })
app.get('/mfa', { preHandler: app.requireAuth({ acr: ACR_MFA }) }, async (request) => request.auth)
app.get('/recent', { preHandler: app.requireAuth({ maxAge: 300 }) }, async (request) => request.auth)
app.get('/recent-mfa', { preHandler: app.requireAuth({ acr: [ACR_MFA, 'urn:other:acr:strong'], maxAge: 60 }) }, async (request) => request.auth)
await app.ready()
t.teardown(async () => {
  await app.close()
  await issuer.stop()
})

const seconds = () => Math.floor(clock / 1000)

t.test('a token whose authentication meets the route: request.auth carries amr, auth_time and acr', async (t) => {
  clock = Date.now()
  const authTime = seconds() - 10
  const token = await issuer.sign({ amr: ['mfa', 'otp', 'pwd'], auth_time: authTime, acr: ACR_MFA })
  for (const url of ['/mfa', '/recent', '/recent-mfa']) {
    const response = await app.inject({ method: 'GET', url, headers: bearer(token) })
    t.equal(response.statusCode, 200, `${url}: ${response.body}`)
    t.same(response.json().amr, ['mfa', 'otp', 'pwd'])
    t.equal(response.json().authTime, authTime)
    t.equal(response.json().acr, ACR_MFA)
  }
})

t.test('no acr, or another one: 401 insufficient_user_authentication naming acr_values', async (t) => {
  clock = Date.now()
  for (const [what, claims] of [
    ['a password login (no acr)', { amr: ['pwd'], auth_time: seconds() }],
    ['an acr the route does not accept', { amr: ['pwd'], auth_time: seconds(), acr: 'urn:token-auth:acr:weak' }],
  ] as const) {
    const response = await app.inject({ method: 'GET', url: '/mfa', headers: bearer(await issuer.sign({ ...claims })) })
    t.equal(response.statusCode, 401, `${what}: 401`)
    t.equal(response.json().code, 'insufficient_user_authentication', what)
    t.equal(
      response.headers['www-authenticate'],
      `Bearer realm="links", error="insufficient_user_authentication", error_description="this needs a stronger authentication", acr_values="${ACR_MFA}"`,
      `${what}: the RFC 9470 §3 challenge`
    )
  }
})

t.test('an authentication older than maxAge, or of unknown age: 401 with max_age', async (t) => {
  clock = Date.now()
  const fresh = await issuer.sign({ amr: ['pwd'], auth_time: seconds() - 290 })
  t.equal((await app.inject({ method: 'GET', url: '/recent', headers: bearer(fresh) })).statusCode, 200, '290 s old, max 300: admitted')
  for (const [what, token] of [
    ['310 s old (beyond max_age and the 5 s tolerance)', await issuer.sign({ amr: ['pwd'], auth_time: seconds() - 310 })],
    ['no auth_time at all', await issuer.sign({ amr: ['pwd'] })],
  ] as const) {
    const response = await app.inject({ method: 'GET', url: '/recent', headers: bearer(token) })
    t.equal(response.statusCode, 401, `${what}: 401`)
    t.match(response.headers['www-authenticate'], /error="insufficient_user_authentication", error_description="[^"]+", max_age=300$/, what)
  }
  const oldMfa = await issuer.sign({ amr: ['mfa', 'otp', 'pwd'], acr: ACR_MFA, auth_time: seconds() - 120 })
  const both = await app.inject({ method: 'GET', url: '/recent-mfa', headers: bearer(oldMfa) })
  t.equal(both.statusCode, 401, 'the level but not the recency: refused')
  t.match(both.headers['www-authenticate'], `acr_values="${ACR_MFA} urn:other:acr:strong", max_age=60`, 'the challenge names both')
})

t.test('malformed authentication claims are an invalid token, not a pass', async (t) => {
  clock = Date.now()
  for (const claims of [{ amr: 'pwd' }, { amr: [1] }, { auth_time: 'yesterday' }, { acr: 7 }]) {
    const response = await app.inject({ method: 'GET', url: '/recent', headers: bearer(await issuer.sign({ auth_time: seconds(), ...claims })) })
    t.equal(response.statusCode, 401, JSON.stringify(claims))
    t.equal(response.json().code, 'invalid_token', JSON.stringify(claims))
  }
})

t.test('requireAuth refuses options it cannot honour', async (t) => {
  const instance = Fastify({ logger: false })
  t.teardown(() => instance.close())
  await instance.register(resourceServerPlugin, {
    issuer: issuer.issuer,
    audience: issuer.audience,
    prefetch: false,
    introspection: { credential: 'tak_introspector' },
  })
  t.throws(() => instance.requireAuth({ acr: ACR_MFA, allowApiKeys: true }), /cannot be combined with allowApiKeys/)
  t.throws(() => instance.requireAuth({ maxAge: 60, allowApiKeys: true }), /cannot be combined with allowApiKeys/)
  t.throws(() => instance.requireAuth({ maxAge: -1 }), /maxAge must be/)
  t.throws(() => instance.requireAuth({ acr: 'has "quotes"' }), /not a valid acr value/)
})

t.test('the service\'s own tokens: a password login has amr pwd and auth_time, no acr, and passes maxAge until it is old', async (t) => {
  const service = await buildTestApp()
  t.teardown(service.close)
  const email = `rs-amr-${Date.now()}@example.test`
  await signup(service.app, { email })
  const login = await service.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password: PASSWORD } })
  const accessToken = login.json().access_token as string
  const claims = decodeJwt(accessToken)
  t.same(claims.amr, ['pwd'])
  t.type(claims.auth_time, 'number')
  t.notOk('acr' in claims, 'one factor asserts no level')

  // The plugin, pointed at the service through inject (its discovery and JWKS).
  let now = Date.now()
  const resource = Fastify({ logger: false })
  t.teardown(() => resource.close())
  const injectFetch: typeof fetch = async (input, init) => {
    const url = new URL(String(input))
    const answer = await service.app.inject({ method: (init?.method ?? 'GET') as 'GET', url: url.pathname + url.search })
    return new Response(answer.body, { status: answer.statusCode, headers: answer.headers as Record<string, string> })
  }
  await resource.register(resourceServerPlugin, { issuer: service.config.issuer, audience: service.config.audience, fetch: injectFetch, now: () => now })
  resource.get('/recent', { preHandler: resource.requireAuth({ maxAge: 300 }) }, async (request) => request.auth)
  resource.get('/mfa', { preHandler: resource.requireAuth({ acr: ACR_MFA }) }, async (request) => request.auth)
  const recent = await resource.inject({ method: 'GET', url: '/recent', headers: bearer(accessToken) })
  t.equal(recent.statusCode, 200, recent.body)
  t.same(recent.json().amr, ['pwd'])
  t.equal((await resource.inject({ method: 'GET', url: '/mfa', headers: bearer(accessToken) })).json().code, 'insufficient_user_authentication', 'a password alone meets no acr')
  now += 306_000
  const stale = await resource.inject({ method: 'GET', url: '/recent', headers: bearer(accessToken) })
  t.equal(stale.json().code, 'insufficient_user_authentication', 'five minutes later (the token still unexpired): too old for max_age 300')
})
