import t from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { bearer, createApiKey, injectAs, signup } from '../../helpers/users.js'
import {
  adminReceiver,
  clientToken,
  createStream,
  CREDENTIAL_CHANGE,
  drain,
  poll,
  POLL,
  pollRequest,
  PUSH,
  SESSION_REVOKED,
  serviceClient,
  type StreamConfig,
} from './ssf.js'

/**
 * The SSF 1.0 §8.1 management API: who may use it (an admin's API key with
 * the events scope, a client_credentials token with it; not a user's token,
 * not a key without the scope, not another receiver), the configuration
 * endpoint's create, read, list, update, replace and delete, status, and
 * retention of what is delivered and of streams abandoned.
 */

const { app, clock } = await fileTestApp()
const receiver = await adminReceiver(app)
const headers = receiver.headers

const ENDPOINTS = (streamId: string) => [
  { method: 'POST' as const, url: '/ssf/stream', payload: {} },
  { method: 'GET' as const, url: '/ssf/stream' },
  { method: 'GET' as const, url: `/ssf/stream?stream_id=${streamId}` },
  { method: 'PATCH' as const, url: '/ssf/stream', payload: { stream_id: streamId } },
  { method: 'PUT' as const, url: '/ssf/stream', payload: { stream_id: streamId } },
  { method: 'DELETE' as const, url: `/ssf/stream?stream_id=${streamId}` },
  { method: 'GET' as const, url: `/ssf/status?stream_id=${streamId}` },
  { method: 'POST' as const, url: '/ssf/status', payload: { stream_id: streamId, status: 'paused' } },
  { method: 'POST' as const, url: '/ssf/verify', payload: { stream_id: streamId } },
  { method: 'POST' as const, url: `/ssf/poll/${streamId}`, payload: { returnImmediately: true } },
]

t.test('who may manage streams', async (t) => {
  const stream = await createStream(app, receiver)
  const user = await signup(app)
  const profileKey = (await createApiKey(app, receiver.admin.access_token, { name: 'profile only', scopes: ['profile'] })).key
  const expect = async (label: string, requestHeaders: Record<string, string>, status: number, code?: string) => {
    for (const endpoint of ENDPOINTS(stream.stream_id)) {
      const response = await app.inject({ ...endpoint, headers: requestHeaders })
      t.equal(response.statusCode, status, `${label}: ${endpoint.method} ${endpoint.url}`)
      if (code) t.equal(json<{ code: string }>(response).code, code)
    }
  }
  await expect('no credential', {}, 401, 'unauthorized')
  await expect('a bad token', bearer('eyJhbGciOiJub25lIn0.e30.'), 401, 'invalid_token')
  await expect('a user\'s access token', bearer(user.access_token), 403, 'forbidden')
  await expect('an admin\'s access token', bearer(receiver.admin.access_token), 403, 'forbidden')
  await expect('an admin\'s key without the events scope', bearer(profileKey), 403, 'insufficient_scope')
  await expect('the same, as X-API-Key', { 'x-api-key': profileKey }, 403, 'insufficient_scope')

  const refusedKey = await injectAs(app, user.access_token, 'POST', '/api-keys', { name: 'events', scopes: ['events'] })
  t.equal(refusedKey.statusCode, 400, 'only an admin may grant the events scope to a key')
  t.equal(json<{ code: string }>(refusedKey).code, 'invalid_scope')

  const weak = await serviceClient(app, receiver.admin.access_token, 'profile')
  await expect('a client_credentials token without the events scope', bearer(await clientToken(app, weak)), 403, 'insufficient_scope')
  const userClient = await injectAs(app, receiver.admin.access_token, 'POST', '/admin/clients', { client_name: 'SPA', redirect_uris: ['https://spa.example/cb'], scope: 'events', token_endpoint_auth_method: 'none' })
  t.equal(userClient.statusCode, 400, 'the events scope is for clients registered for client_credentials')
})

t.test('another receiver\'s stream is not found, whatever the endpoint', async (t) => {
  const stream = await createStream(app, receiver)
  const other = await adminReceiver(app)
  for (const endpoint of ENDPOINTS(stream.stream_id).filter((e) => e.url.includes(stream.stream_id) || 'stream_id' in (e.payload ?? {}))) {
    const response = await app.inject({ ...endpoint, headers: other.headers })
    t.equal(response.statusCode, 404, `${endpoint.method} ${endpoint.url}`)
    t.equal(json<{ code: string }>(response).code, 'stream_not_found')
  }
  const theirs = json<StreamConfig[]>(await app.inject({ method: 'GET', url: '/ssf/stream', headers: other.headers }))
  t.same(theirs, [], 'the list is the receiver\'s own')
  t.equal((await app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${stream.stream_id}`, headers })).statusCode, 200, 'still there for its owner')
})

t.test('a client_credentials client manages its own streams, its SETs addressed to it', async (t) => {
  const client = await serviceClient(app, receiver.admin.access_token)
  const token = await clientToken(app, client, 'events')
  const stream = await createStream(app, { headers: bearer(token) }, { events_requested: [SESSION_REVOKED] })
  t.equal(stream.aud, client.clientId)
  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const [set] = await drain(app, { headers: bearer(token) }, stream)
  t.equal(set!.aud, client.clientId)
  t.equal((await pollRequest(app, receiver, stream.stream_id)).statusCode, 404, 'the admin\'s key does not reach the client\'s stream')
  // The client loses client_credentials: its token, and its stream, stop working.
  const changed = await injectAs(app, receiver.admin.access_token, 'PATCH', `/admin/clients/${client.clientId}`, { grant_types: ['authorization_code'], redirect_uris: ['https://x.example/cb'], scope: '' })
  t.equal(changed.statusCode, 200, changed.body)
  await new Promise((resolve) => setTimeout(resolve, 5_100))
  t.equal((await pollRequest(app, { headers: bearer(token) }, stream.stream_id)).statusCode, 401)
})

t.test('create, read, list, update, replace, delete (SSF 1.0 section 8.1.1)', async (t) => {
  const created = await createStream(app, receiver, { events_requested: [SESSION_REVOKED], description: 'links service' })
  t.same(created, {
    stream_id: created.stream_id,
    iss: app.config.issuer,
    aud: `urn:token-auth:ssf:stream:${created.stream_id}`,
    delivery: { method: POLL, endpoint_url: `${app.config.issuer}/ssf/poll/${created.stream_id}` },
    events_supported: [SESSION_REVOKED, CREDENTIAL_CHANGE],
    events_requested: [SESSION_REVOKED],
    events_delivered: [SESSION_REVOKED],
    description: 'links service',
    min_verification_interval: 5,
    inactivity_timeout: 3 * 24 * 3600,
  })
  const read = await app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${created.stream_id}`, headers })
  t.same(json(read), created)
  t.equal(read.headers['cache-control'], 'no-store')
  const list = json<StreamConfig[]>(await app.inject({ method: 'GET', url: '/ssf/stream', headers }))
  t.ok(list.some((stream) => stream.stream_id === created.stream_id))

  const patched = json<StreamConfig>(await app.inject({ method: 'PATCH', url: '/ssf/stream', headers, payload: { stream_id: created.stream_id, events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] } }))
  t.same(patched.events_delivered, [SESSION_REVOKED, CREDENTIAL_CHANGE])
  t.equal(patched.description, 'links service', 'PATCH keeps what it does not name')
  const replaced = json<StreamConfig>(await app.inject({ method: 'PUT', url: '/ssf/stream', headers, payload: { stream_id: created.stream_id, events_requested: [CREDENTIAL_CHANGE], iss: created.iss, aud: [created.aud] } }))
  t.same(replaced.events_delivered, [CREDENTIAL_CHANGE])
  t.notOk('description' in replaced, 'PUT deletes what it does not name')

  for (const [member, value] of [['iss', 'https://evil.example'], ['aud', 'someone-else'], ['events_delivered', [SESSION_REVOKED]], ['min_verification_interval', 1]] as const) {
    const mismatch = await app.inject({ method: 'PATCH', url: '/ssf/stream', headers, payload: { stream_id: created.stream_id, [member]: value } })
    t.equal(mismatch.statusCode, 400, `a transmitter-supplied ${member} that does not match`)
    t.equal(json<{ code: string }>(mismatch).code, 'invalid_stream_configuration')
  }
  const unknownMethod = await app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { delivery: { method: 'urn:example:smoke-signals' } } })
  t.equal(unknownMethod.statusCode, 400)
  const pushWithoutUrl = await app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { delivery: { method: PUSH } } })
  t.equal(pushWithoutUrl.statusCode, 400)
  const unknownField = await app.inject({ method: 'POST', url: '/ssf/stream', headers, payload: { stream_id: created.stream_id } })
  t.equal(unknownField.statusCode, 400, 'POST takes receiver-supplied members only')

  const deleted = await app.inject({ method: 'DELETE', url: `/ssf/stream?stream_id=${created.stream_id}`, headers })
  t.equal(deleted.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: `/ssf/stream?stream_id=${created.stream_id}`, headers })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: `/ssf/stream?stream_id=${created.stream_id}`, headers })).statusCode, 404)
})

t.test('status: read and changed', async (t) => {
  const stream = await createStream(app, receiver)
  const read = await app.inject({ method: 'GET', url: `/ssf/status?stream_id=${stream.stream_id}`, headers })
  t.same(json(read), { stream_id: stream.stream_id, status: 'enabled' })
  const paused = await app.inject({ method: 'POST', url: '/ssf/status', headers, payload: { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' } })
  t.same(json(paused), { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' })
  const bad = await app.inject({ method: 'POST', url: '/ssf/status', headers, payload: { stream_id: stream.stream_id, status: 'gone' } })
  t.equal(bad.statusCode, 400)
})

t.test('a receiver holds at most 50 streams', async (t) => {
  const many = await adminReceiver(app)
  for (let i = 0; i < 50; i++) await createStream(app, many, { events_requested: [] })
  const refused = await app.inject({ method: 'POST', url: '/ssf/stream', headers: many.headers, payload: {} })
  t.equal(refused.statusCode, 409)
  t.equal(json<{ code: string }>(refused).code, 'stream_limit')
})

t.test('retention: delivered SETs after a day; poll streams unpolled for three days; streams of an admin no more', async (t) => {
  const kept = await createStream(app, receiver)
  const abandoned = await createStream(app, receiver)
  await drain(app, receiver, kept)
  const demoted = await adminReceiver(app)
  const orphan = await createStream(app, demoted)
  await app.db.user.update({ where: { id: demoted.admin.id }, data: { role: 'user' } })
  const queued = await app.db.securityEvent.count({ where: { streamId: orphan.stream_id } })
  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  t.equal(await app.db.securityEvent.count({ where: { streamId: orphan.stream_id } }), queued, 'a demoted admin\'s stream receives nothing new')
  await drain(app, receiver, kept)

  const report = await app.retention.runPass()
  t.ok(report.abandonedSsfStreams! >= 1, 'the demoted admin\'s stream at once (and the client\'s that lost client_credentials)')
  t.equal(await app.db.ssfStream.count({ where: { id: orphan.stream_id } }), 0)

  clock.advance(2 * 24 * 3600)
  await app.revocations.sync()
  await poll(app, receiver, kept.stream_id)
  clock.advance(1.5 * 24 * 3600)
  await app.revocations.sync()
  const later = await app.retention.runPass()
  t.ok(later.securityEventsDelivered! >= 1, `delivered SETs deleted: ${later.securityEventsDelivered}`)
  t.ok(later.abandonedSsfStreams! >= 1)
  t.equal(await app.db.ssfStream.count({ where: { id: abandoned.stream_id } }), 0, 'never polled: deleted')
  t.equal(await app.db.ssfStream.count({ where: { id: kept.stream_id } }), 1, 'polled within three days: kept')
})
