import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import resourceServerPlugin, { type ResourceServerOptions } from '../../src/resource-server/index.js'
import { json, listeningTestApp } from '../helpers/app.js'
import { bearer, signup, signupAdmin, createApiKey, login } from '../helpers/users.js'
import { serviceClient } from '../features/security-events/ssf.js'

/**
 * The resource-server kit consuming the issuer's security events (DESIGN
 * §3.18) against the real auth service over HTTP: it creates its own poll
 * stream, refuses a revoked session's tokens within a second on every route
 * with no introspection call at all (every request the kit sends to the
 * introspection endpoint is counted), falls back to introspection for
 * sensitive routes while the stream is down and back again when it returns,
 * creates a new stream when its stream is gone, authenticates with an
 * admin's API key or a client_credentials client, and deletes its stream on
 * close.
 */

const AUDIENCE = 'https://api.events.test'
const auth = await listeningTestApp(() => ({ ACCESS_TOKEN_AUDIENCE: AUDIENCE }))
t.teardown(async () => {
  // An HTTP client pool may hold a connection it opened and never sent a request on (undici does, when
  // another connection freed first); Node counts it active until its headers timeout, so close would wait.
  auth.app.server.closeAllConnections()
  await auth.close()
})
const admin = await signupAdmin(auth.app)
const serviceKey = (await createApiKey(auth.app, admin.access_token, { name: 'resource server', scopes: ['introspect', 'events'] })).key

/** Requests the kit sends, by kind; while the stream is cut, polls fail (those in flight too, as a dropped connection). */
class CountingFetch {
  introspections = 0
  polls = 0
  private down = false
  private readonly inFlight = new Set<AbortController>()
  get streamDown (): boolean {
    return this.down
  }

  set streamDown (down: boolean) {
    this.down = down
    if (down) for (const controller of this.inFlight) controller.abort(new TypeError('fetch failed (the test cut the stream)'))
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    if (url.includes('/auth/introspect')) this.introspections++
    if (!url.includes('/ssf/poll/')) return globalThis.fetch(input, init)
    this.polls++
    if (this.down) throw new TypeError('fetch failed (the test cut the stream)')
    const controller = new AbortController()
    this.inFlight.add(controller)
    try {
      return await globalThis.fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal })
    } finally {
      this.inFlight.delete(controller)
    }
  }
}

async function kit (t: Test, options: Partial<ResourceServerOptions> = {}, counting = new CountingFetch()): Promise<{ app: FastifyInstance; counting: CountingFetch }> {
  const app = Fastify({ logger: false })
  await app.register(resourceServerPlugin, {
    issuer: auth.issuer,
    audience: AUDIENCE,
    introspection: { credential: serviceKey, sensitiveTtlMs: 200 },
    events: { credential: serviceKey, staleAfterMs: 500 },
    fetch: counting.fetch,
    ...options,
  })
  app.get('/any', { preHandler: app.requireAuth() }, async (request) => request.auth)
  app.delete('/sensitive', { preHandler: app.requireAuth({ sensitive: true }) }, async (request) => request.auth)
  await app.ready()
  t.teardown(() => app.close())
  await app.resourceServer.events!.whenHealthy(10_000)
  return { app, counting }
}

const call = (app: FastifyInstance, method: 'GET' | 'DELETE', url: string, token: string) => app.inject({ method, url, headers: bearer(token) })

/** Calls until the kit refuses the token; the milliseconds it took from `since`. */
async function refusedWithin (app: FastifyInstance, url: string, token: string, since: number, limitMs = 3_000): Promise<number> {
  for (;;) {
    const response = await call(app, url === '/sensitive' ? 'DELETE' : 'GET', url, token)
    if (response.statusCode === 401) return performance.now() - since
    if (response.statusCode !== 200) throw new Error(`unexpected ${response.statusCode} ${response.body}`)
    if (performance.now() - since > limitMs) throw new Error(`still accepted after ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('a revoked session\'s token is refused within one second, on every route, with zero introspection calls', async (t) => {
  const { app, counting } = await kit(t)
  const timings: number[] = []
  for (let round = 0; round < 3; round++) {
    const user = await signup(auth.app)
    t.equal((await call(app, 'GET', '/any', user.access_token)).statusCode, 200)
    const sensitive = await call(app, 'DELETE', '/sensitive', user.access_token)
    t.equal(sensitive.statusCode, 200, 'a sensitive route admits the live session')
    t.equal(json<{ introspected: boolean }>(sensitive).introspected, false, 'without asking the issuer')

    const revokedAt = performance.now()
    const logout = await auth.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
    t.equal(logout.statusCode, 204)
    const elapsed = await refusedWithin(app, '/any', user.access_token, revokedAt)
    timings.push(elapsed)
    t.ok(elapsed < 1_000, `refused ${elapsed.toFixed(0)} ms after the logout`)
    const refused = await call(app, 'DELETE', '/sensitive', user.access_token)
    t.equal(refused.statusCode, 401)
    t.match(refused.headers['www-authenticate'], /error="invalid_token", error_description="the access token was revoked"/)
  }
  t.equal(counting.introspections, 0, 'the introspection endpoint was never called')
  t.equal(app.resourceServer.introspector!.requests, 0)
  t.comment(`revocation to refusal: ${timings.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}`)
  const health = app.resourceServer.events!.health()
  t.equal(health.state, 'healthy')
  t.ok(health.received >= 3, `${health.received} SETs received`)
  t.equal(health.refused, 0)
})

t.test('a session revoked before the kit started is refused too (the stream starts with the backlog)', async (t) => {
  const user = await signup(auth.app)
  await auth.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const { app, counting } = await kit(t)
  t.equal((await call(app, 'GET', '/any', user.access_token)).statusCode, 401, 'refused from the first request on')
  t.equal(counting.introspections, 0)
})

t.test('an admin disabling a user reaches the kit in time', async (t) => {
  const { app, counting } = await kit(t)
  const user = await signup(auth.app)
  const second = await login(auth.app, user.email)
  const disabledAt = performance.now()
  const patch = await auth.app.inject({ method: 'PATCH', url: `/admin/users/${user.id}`, headers: bearer(admin.access_token), payload: { disabled: true } })
  t.equal(patch.statusCode, 200, patch.body)
  for (const token of [user.access_token, second.access_token]) {
    const elapsed = await refusedWithin(app, '/any', token, disabledAt)
    t.ok(elapsed < 1_000, `refused ${elapsed.toFixed(0)} ms after the user was disabled`)
  }
  t.equal(counting.introspections, 0)
})

t.test('while the stream is down, sensitive routes fall back to introspection; back up, they stop', async (t) => {
  const { app, counting } = await kit(t)
  const events = app.resourceServer.events!
  const user = await signup(auth.app)
  const other = await signup(auth.app)

  counting.streamDown = true
  const cutAt = Date.now()
  while (events.health().state !== 'degraded') {
    if (Date.now() - cutAt > 10_000) throw new Error(`never degraded: ${JSON.stringify(events.health())}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(Date.now() - cutAt >= 500, 'degraded once the stream has failed for staleAfterMs, not at the first failure')
  t.match(events.health(), { state: 'degraded', lastError: /cut the stream|unreachable/ })

  const fallback = await call(app, 'DELETE', '/sensitive', user.access_token)
  t.equal(fallback.statusCode, 200)
  t.equal(json<{ introspected: boolean }>(fallback).introspected, true, 'the issuer was asked')
  t.ok(counting.introspections >= 1, `${counting.introspections} introspection calls while the stream was down`)

  // Revoked while the stream is down: the sensitive route learns it from introspection.
  await auth.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(other.access_token) })
  t.equal((await call(app, 'DELETE', '/sensitive', other.access_token)).statusCode, 401, 'sensitive: refused through introspection')
  t.equal((await call(app, 'GET', '/any', other.access_token)).statusCode, 200, 'non-sensitive: accepted until the stream is back, as without a stream')

  counting.streamDown = false
  const restoredAt = performance.now()
  await events.whenHealthy(10_000)
  const elapsed = await refusedWithin(app, '/any', other.access_token, restoredAt)
  t.ok(elapsed < 2_000, `the revocation made while the stream was down arrived ${elapsed.toFixed(0)} ms after it came back`)
  const before = counting.introspections
  const live = await call(app, 'DELETE', '/sensitive', user.access_token)
  t.equal(json<{ introspected: boolean }>(live).introspected, false)
  t.equal(counting.introspections, before, 'no introspection once the stream is healthy again')
})

t.test('without introspection, a sensitive route answers 503 while the stream is down', async (t) => {
  const counting = new CountingFetch()
  const { app } = await kit(t, { introspection: undefined }, counting)
  const user = await signup(auth.app)
  t.equal((await call(app, 'DELETE', '/sensitive', user.access_token)).statusCode, 200)
  counting.streamDown = true
  const cutAt = Date.now()
  while (app.resourceServer.events!.health().state !== 'degraded') {
    if (Date.now() - cutAt > 10_000) throw new Error('never degraded')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const down = await call(app, 'DELETE', '/sensitive', user.access_token)
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'] !== undefined, true)
  t.equal((await call(app, 'GET', '/any', user.access_token)).statusCode, 200, 'other routes keep working')
})

t.test('a stream deleted at the issuer is created again, with the backlog; the kit deletes its own on close', async (t) => {
  const { app } = await kit(t)
  const events = app.resourceServer.events!
  const first = events.health().streamId!
  const headers = bearer(serviceKey)
  t.equal((await auth.app.inject({ method: 'DELETE', url: `/ssf/stream?stream_id=${first}`, headers })).statusCode, 204)
  const user = await signup(auth.app)
  await auth.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const since = performance.now()
  const elapsed = await refusedWithin(app, '/any', user.access_token, since, 10_000)
  const second = events.health().streamId!
  t.not(second, first, 'a new stream')
  t.ok(elapsed < 2_000, `refused ${elapsed.toFixed(0)} ms later, on the new stream (the waiting poll answered 404 once its stream was gone)`)
  t.equal((await auth.app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${second}`, headers })).statusCode, 200)
  await app.close()
  t.equal(events.health().state, 'closed')
  t.equal((await auth.app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${second}`, headers })).statusCode, 404, 'deleted on close')
})

t.test('a client_credentials client with the events scope works as the credential', async (t) => {
  const client = await serviceClient(auth.app, admin.access_token)
  const { app, counting } = await kit(t, { introspection: undefined, events: { credential: client, staleAfterMs: 500 } })
  const user = await signup(auth.app)
  t.equal((await call(app, 'DELETE', '/sensitive', user.access_token)).statusCode, 200)
  const revokedAt = performance.now()
  await auth.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const elapsed = await refusedWithin(app, '/sensitive', user.access_token, revokedAt)
  t.ok(elapsed < 1_000, `refused ${elapsed.toFixed(0)} ms after the logout`)
  t.equal(counting.introspections, 0)
  const streams = json<{ aud: string }[]>(await auth.app.inject({
    method: 'GET',
    url: '/ssf/stream',
    headers: bearer(json<{ access_token: string }>(await auth.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials',
    })).access_token),
  }))
  t.same(streams.map((stream) => stream.aud), [client.clientId], 'the client\'s stream, its SETs addressed to the client')
})

t.test('options are checked: a credential is required', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(resourceServerPlugin, { issuer: auth.issuer, audience: AUDIENCE, events: { credential: '' } })
    await app.ready()
  }, /events\.credential/)
})
