import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import resourceServerPlugin from '../../src/resource-server/index.js'
import type { SecurityEventStream } from '../../src/resource-server/security-events.js'
import { json } from '../helpers/app.js'
import { createApiKey, signup } from '../helpers/users.js'
import { injectFetch } from '../features/security-events/ssf.js'
import { assertInvalidToken, assertNo5xx } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { b64, es256, hs256, type AttackContext, type Claims, type Header } from './context.js'

/**
 * Security events (DESIGN §3.18, issue "Events for the platform"): forged
 * and misdirected Security Event Tokens at the resource-server kit, which
 * acts on them (a session-revoked event ends a session's tokens there), and
 * the stream management and poll endpoints of the service. A forgery that
 * passed would let an attacker lock users out of every service (revoked
 * sessions); a stream another could read would leak who signs out when.
 */

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

interface Kit {
  app: FastifyInstance
  events: SecurityEventStream
  key: string
  /** Every SET the kit's polls received, by jti. */
  received: Map<string, string>
  streamId: string
  audience: string
}

/** A resource server on the context's service (no socket: its fetch is app.inject), its stream healthy. */
async function kit (ctx: AttackContext, t: Test): Promise<Kit> {
  const admin = await ctx.makeAdmin(await ctx.signup('events-admin'))
  const { key } = await createApiKey(ctx.app, admin.access_token, { name: 'events', scopes: ['events'] })
  const received = new Map<string, string>()
  const base = injectFetch(ctx.app)
  const recording: typeof fetch = async (input, init) => {
    const response = await base(input, init)
    const url = input instanceof Request ? input.url : String(input)
    if (url.includes('/ssf/poll/') && response.status === 200) {
      const body = (await response.clone().json()) as { sets: Record<string, string> }
      for (const [jti, set] of Object.entries(body.sets)) received.set(jti, set)
    }
    return response
  }
  const app = Fastify({ logger: false })
  await app.register(resourceServerPlugin, {
    issuer: ctx.config.issuer,
    audience: ctx.config.audience,
    events: { credential: key, staleAfterMs: 2_000 },
    fetch: recording,
    // The issuer's clock, which earlier rows may have moved: the victims' tokens are checked at the time they were issued for.
    now: ctx.clock.now,
  })
  app.get('/any', { preHandler: app.requireAuth() }, async (request) => request.auth)
  await app.ready()
  t.teardown(() => app.close())
  const events = app.resourceServer.events!
  await events.whenHealthy(10_000)
  const streamId = events.health().streamId!
  const config = json<{ aud: string }>(await ctx.app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${streamId}`, headers: { authorization: `Bearer ${key}` } }))
  return { app, events, key, received, streamId, audience: config.aud }
}

/** The claims of a session-revoked SET for `sessionId`, on the kit's stream, with overrides (undefined removes). */
function setClaims (ctx: AttackContext, target: Kit, sessionId: string, userId: string, overrides: Claims = {}): Claims {
  const claims: Claims = {
    iss: ctx.config.issuer,
    iat: Math.floor(Date.now() / 1000),
    jti: randomUUID(),
    aud: target.audience,
    sub_id: { format: 'complex', session: { format: 'opaque', id: sessionId }, user: { format: 'opaque', id: userId } },
    events: { [SESSION_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } },
    ...overrides,
  }
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
  return claims
}

const SET_HEADER = (ctx: AttackContext, overrides: Header = {}): Header => ({ alg: 'ES256', kid: ctx.serverKid, typ: 'secevent+jwt', ...overrides })

/** Hands the kit `set` as its poll would, and checks it was refused with `err` and revoked nothing. */
async function assertRefused (t: Test, target: Kit, set: string, jti: string, err: string, victim: { sessionId: string; access_token: string }, label: string) {
  const before = target.events.health().refused
  const answer = await target.events.receive(jti, set)
  t.equal(answer?.err, err, `${label}: refused as ${err}`)
  t.equal(target.events.health().refused, before + 1, `${label}: counted as refused`)
  t.notOk(target.events.isRevoked(victim.sessionId), `${label}: the session is not revoked`)
  t.equal((await target.app.inject({ method: 'GET', url: '/any', headers: { authorization: `Bearer ${victim.access_token}` } })).statusCode, 200, `${label}: the victim's token still works`)
}

export const securityEventCases: AttackCase[] = [
  {
    id: 'SE-01',
    title: 'event forgery: a SET signed by another key (the attacker\'s, under the service\'s kid or its own, or an embedded jwk) revokes nothing at the resource server',
    source: 'RFC 8417 §4.1 (SETs must be integrity-protected), §4.4; SSF 1.0 §4.1.4 (keys from the transmitter\'s jwks_uri); RFC 8725 §3.10',
    async run (ctx, t) {
      const target = await kit(ctx, t)
      const victim = await signup(ctx.app, { label: 'se-forged-key' })
      for (const [label, header] of [
        ['the service\'s kid', SET_HEADER(ctx)],
        ['the attacker\'s own kid', SET_HEADER(ctx, { kid: ctx.attackerKid })],
        ['an embedded jwk', SET_HEADER(ctx, { kid: ctx.attackerKid, jwk: ctx.attackerJwk })],
        ['a jku to the attacker', SET_HEADER(ctx, { jku: 'https://evil.example/jwks.json' })],
      ] as const) {
        const claims = setClaims(ctx, target, victim.sessionId, victim.id)
        await assertRefused(t, target, es256(ctx.attackerKey, header, claims), claims.jti as string, 'invalid_key', victim, label)
      }
    },
  },
  {
    id: 'SE-02',
    title: 'event forgery: alg none, HS256 keyed with the public key, and an algorithm outside the pinned list are refused before any key is used',
    source: 'RFC 8417 §4.1; RFC 8725 §2.1, §3.1 (algorithm verification); CVE-2015-9235',
    async run (ctx, t) {
      const target = await kit(ctx, t)
      const victim = await signup(ctx.app, { label: 'se-alg' })
      const none = setClaims(ctx, target, victim.sessionId, victim.id)
      await assertRefused(t, target, `${b64({ alg: 'none', typ: 'secevent+jwt' })}.${b64(none)}.`, none.jti as string, 'invalid_key', victim, 'alg none')
      const hs = setClaims(ctx, target, victim.sessionId, victim.id)
      await assertRefused(t, target, hs256(ctx.serverPem, SET_HEADER(ctx, { alg: 'HS256' }), hs), hs.jti as string, 'invalid_key', victim, 'HS256 with the public key')
      const es384 = setClaims(ctx, target, victim.sessionId, victim.id)
      await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx, { alg: 'ES384' }), es384), es384.jti as string, 'invalid_key', victim, 'ES384 (not pinned)')
    },
  },
  {
    id: 'SE-03',
    title: 'event forgery: a SET with another issuer, or a genuine SET of another stream (another audience), revokes nothing',
    source: 'RFC 8417 §4.3 (iss and aud must be validated); SSF 1.0 §4.1.6 (iss), §4.1.8 (aud: distinct SETs per receiver)',
    async run (ctx, t) {
      const target = await kit(ctx, t)
      const victim = await signup(ctx.app, { label: 'se-iss-aud' })
      const foreign = setClaims(ctx, target, victim.sessionId, victim.id, { iss: 'https://evil.example' })
      await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx), foreign), foreign.jti as string, 'invalid_issuer', victim, 'another issuer, the service\'s own key')
      const misaddressed = setClaims(ctx, target, victim.sessionId, victim.id, { aud: 'urn:token-auth:ssf:stream:someone-else' })
      await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx), misaddressed), misaddressed.jti as string, 'invalid_audience', victim, 'another audience')

      // A genuine SET, signed by the service, of another receiver's stream: replayed at this resource server.
      const headers = { authorization: `Bearer ${target.key}` }
      const other = json<{ stream_id: string }>(await ctx.app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { events_requested: [SESSION_REVOKED] } }))
      const bystander = await signup(ctx.app, { label: 'se-bystander' })
      await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${bystander.access_token}` } })
      const polled = json<{ sets: Record<string, string> }>(await ctx.app.inject({ method: 'POST', url: `/ssf/poll/${other.stream_id}`, headers, payload: { returnImmediately: true, maxEvents: 1000 } }))
      const genuine = Object.entries(polled.sets).at(-1)!
      const answer = await target.events.receive(genuine[0], genuine[1])
      t.equal(answer?.err, 'invalid_audience', 'a genuine SET for another audience is refused')
    },
  },
  {
    id: 'SE-04',
    title: 'token confusion: an access token, a SET without typ secevent+jwt, one with sub or exp, and one whose jti is not the one it was delivered under are no security events',
    source: 'RFC 8417 §4.5, §4.6, §4.7 (distinguishing SETs from other JWTs: explicit typing); SSF 1.0 §4.1.1, §4.1.3; RFC 8725 §3.11',
    async run (ctx, t) {
      const target = await kit(ctx, t)
      const victim = await signup(ctx.app, { label: 'se-confusion' })
      const accessToken = ctx.serverSigned({}, { sid: victim.sessionId, sub: victim.id, events: { [SESSION_REVOKED]: {} }, sub_id: {} })
      await assertRefused(t, target, accessToken, 'jti-of-an-access-token', 'invalid_request', victim, 'an access token (typ at+jwt)')
      const untyped = setClaims(ctx, target, victim.sessionId, victim.id)
      await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx, { typ: undefined }), untyped), untyped.jti as string, 'invalid_request', victim, 'no typ')
      for (const extra of [{ sub: victim.id }, { exp: Math.floor(Date.now() / 1000) + 600 }]) {
        const claims = setClaims(ctx, target, victim.sessionId, victim.id, extra)
        await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx), claims), claims.jti as string, 'invalid_request', victim, `with ${Object.keys(extra)[0]}`)
      }
      const moved = setClaims(ctx, target, victim.sessionId, victim.id)
      await assertRefused(t, target, es256(ctx.serverKey, SET_HEADER(ctx), moved), randomUUID(), 'invalid_request', victim, 'delivered under another jti')
      // The other way round: a SET is no access token, at the service or at the resource server.
      const set = es256(ctx.serverKey, SET_HEADER(ctx), setClaims(ctx, target, victim.sessionId, victim.id, { aud: ctx.config.audience, sub: victim.id }))
      assertInvalidToken(t, await ctx.bearer(set), 'a SET as an access token at the service')
      t.equal((await target.app.inject({ method: 'GET', url: '/any', headers: { authorization: `Bearer ${set}` } })).statusCode, 401, 'and at the resource server')
    },
  },
  {
    id: 'SE-05',
    title: 'replayed jti: a genuine SET delivered again is processed once and acknowledged; a revocation is never undone or doubled by a replay',
    source: 'RFC 8417 §4.3 (jti: replay detection); RFC 8936 §2.4.2 (acknowledgement), §4; SSF 1.0 §4.1',
    async run (ctx, t) {
      const target = await kit(ctx, t)
      const victim = await signup(ctx.app, { label: 'se-replay' })
      await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${victim.access_token}` } })
      const started = Date.now()
      while (!target.events.isRevoked(victim.sessionId)) {
        if (Date.now() - started > 3_000) throw new Error('the revocation never arrived')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const [jti, set] = [...target.received].at(-1)!
      const before = target.events.health()
      for (let i = 0; i < 3; i++) t.equal(await target.events.receive(jti, set), null, 'acknowledged again')
      const after = target.events.health()
      t.equal(after.replayed, before.replayed + 3, 'each replay recognised by its jti')
      t.equal(after.received, before.received, 'processed once')
      t.ok(target.events.isRevoked(victim.sessionId), 'still revoked')
      assertInvalidToken(t, await target.app.inject({ method: 'GET', url: '/any', headers: { authorization: `Bearer ${victim.access_token}` } }), 'the revoked session')
    },
  },
  {
    id: 'SE-06',
    title: 'stream management by a non-admin: no credential, a user\'s token, an admin\'s token, a key without the events scope, a user\'s request for that scope; nothing created',
    source: 'SSF 1.0 §8 (authorization MUST associate a receiver with its streams), §7.1.1; ASVS 5.0 V8.2.1 (function-level authorisation); DESIGN §3.18',
    async run (ctx, t) {
      const user = await signup(ctx.app, { label: 'se-non-admin' })
      const admin = await ctx.makeAdmin(await ctx.signup('se-admin-no-scope'))
      const profileKey = (await createApiKey(ctx.app, admin.access_token, { name: 'profile', scopes: ['profile'] })).key
      const streams = await ctx.app.db.ssfStream.count()
      for (const [label, headers, status] of [
        ['no credential', {}, 401],
        ['a user\'s access token', { authorization: `Bearer ${user.access_token}` }, 403],
        ['an admin\'s access token', { authorization: `Bearer ${admin.access_token}` }, 403],
        ['an admin\'s key without the events scope', { 'x-api-key': profileKey }, 403],
        ['a forged token', { authorization: `Bearer ${ctx.attackerSigned({ typ: 'at+jwt' }, { sid: undefined, client_id: 'svc', sub: 'svc', scope: 'events' })}` }, 401],
      ] as const) {
        const response = await ctx.app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { events_requested: [SESSION_REVOKED] } })
        t.equal(response.statusCode, status, label)
        assertNo5xx(t, response, label)
      }
      const scoped = await ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${user.access_token}` }, payload: { name: 'x', scopes: ['events'] } })
      t.equal(scoped.statusCode === 400 || scoped.statusCode === 403, true, `a user cannot get a key with the events scope (${scoped.statusCode})`)
      t.equal(await ctx.app.db.ssfStream.count(), streams, 'no stream was created')
    },
  },
  {
    id: 'SE-07',
    title: 'a receiver cannot read, poll, acknowledge, change or delete another owner\'s stream: 404, no SET handed out, nothing changed',
    source: 'SSF 1.0 §8 (only authorized receivers access their streams), §8.1.1.2 (404 for a stream not of this receiver); RFC 8936 §4 (authentication of the poll); ASVS 5.0 V8.2.2 (IDOR)',
    async run (ctx, t) {
      const owner = await ctx.makeAdmin(await ctx.signup('se-owner'))
      const ownerKey = (await createApiKey(ctx.app, owner.access_token, { name: 'owner', scopes: ['events'] })).key
      const intruder = await ctx.makeAdmin(await ctx.signup('se-intruder'))
      const intruderKey = (await createApiKey(ctx.app, intruder.access_token, { name: 'intruder', scopes: ['events'] })).key
      const own = { authorization: `Bearer ${ownerKey}` }
      const theirs = { authorization: `Bearer ${intruderKey}` }
      const stream = json<{ stream_id: string }>(await ctx.app.inject({ method: 'POST', url: '/ssf/stream', headers: own, payload: { events_requested: [SESSION_REVOKED] } }))
      const victim = await signup(ctx.app, { label: 'se-idor' })
      await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${victim.access_token}` } })
      const queued = await ctx.app.db.securityEvent.findMany({ where: { streamId: stream.stream_id }, select: { id: true } })
      const id = stream.stream_id
      for (const request of [
        { method: 'POST' as const, url: `/ssf/poll/${id}`, payload: { returnImmediately: true, ack: queued.map((row) => row.id) } },
        { method: 'GET' as const, url: `/ssf/stream?stream_id=${id}` },
        { method: 'PATCH' as const, url: '/ssf/stream', payload: { stream_id: id, events_requested: [] } },
        { method: 'PUT' as const, url: '/ssf/stream', payload: { stream_id: id, delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: 'https://evil.example/steal' } } },
        { method: 'POST' as const, url: '/ssf/status', payload: { stream_id: id, status: 'disabled' } },
        { method: 'POST' as const, url: '/ssf/verify', payload: { stream_id: id } },
        { method: 'DELETE' as const, url: `/ssf/stream?stream_id=${id}` },
      ]) {
        const response = await ctx.app.inject({ ...request, headers: theirs })
        t.equal(response.statusCode, 404, `${request.method} ${request.url.split('?')[0]}`)
      }
      const rows = await ctx.app.db.securityEvent.findMany({ where: { streamId: id } })
      t.ok(rows.length > 0 && rows.every((row) => row.attempts === 0 && row.deliveredAt === null && row.deadAt === null), 'no SET handed out or acknowledged')
      const config = json<{ delivery: { method: string }; events_delivered: string[] }>(await ctx.app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${id}`, headers: own }))
      t.equal(config.delivery.method, 'urn:ietf:rfc:8936', 'still polled, not pushed to the intruder')
      t.same(config.events_delivered, [SESSION_REVOKED])
      t.equal(json<{ status: string }>(await ctx.app.inject({ method: 'GET', url: `/ssf/status?stream_id=${id}`, headers: own })).status, 'enabled')
    },
  },
  {
    id: 'SE-08',
    title: 'SSRF through a push stream: an endpoint on loopback, a private network or a metadata address is refused when the stream is created or changed',
    source: 'OWASP SSRF Prevention Cheat Sheet; RFC 8935 §4 (push endpoints); DESIGN §3.18 (the webhook rules, WEBHOOK_ALLOW_PRIVATE_NETWORKS)',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('se-ssrf'))
      const key = (await createApiKey(ctx.app, admin.access_token, { name: 'ssrf', scopes: ['events'] })).key
      const headers = { authorization: `Bearer ${key}` }
      const stream = json<{ stream_id: string }>(await ctx.app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: {} }))
      for (const url of ['http://127.0.0.1:5432/', 'http://[::1]/', 'http://169.254.169.254/latest/meta-data', 'http://10.1.2.3/', 'http://0x7f.1/', 'http://metadata.google.internal/', 'file:///etc/passwd']) {
        const delivery = { method: 'urn:ietf:rfc:8935', endpoint_url: url }
        const created = await ctx.app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { delivery } })
        t.equal(created.statusCode, 400, `create: ${url}`)
        const changed = await ctx.app.inject({ method: 'PATCH', url: '/ssf/stream', headers, payload: { stream_id: stream.stream_id, delivery } })
        t.equal(changed.statusCode, 400, `change: ${url}`)
      }
      t.equal((await ctx.app.db.ssfStream.findUniqueOrThrow({ where: { id: stream.stream_id } })).deliveryMethod, 'poll')
    },
  },
]
