import t from 'tap'
import { buildTestApp, json } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { bearer, signup } from '../../helpers/users.js'
import { serializeRevocationSync } from '../../security/context.js'
import { adminReceiver, createStream, drain, poll, pollRequest, revokedSessions, verifySet } from './ssf.js'

/**
 * RFC 8936 poll delivery over the delivery queue: a SET handed out is
 * leased (not handed out again while it may still be acknowledged), an
 * acknowledgement ends it, an unacknowledged one comes back after the lease
 * (30 s, on the test clock), a setErr ends it for good; maxEvents and
 * moreAvailable; a long poll answers within a second of a revocation; two
 * instances polling one stream never hand out one SET twice.
 */

const database = await createTestDatabase()
const main = await buildTestApp({}, { database })
const { app, clock } = main
const second = await buildTestApp({}, { database, clock })
t.teardown(async () => {
  await second.close()
  await main.close()
  await database.drop()
})
serializeRevocationSync(app)
serializeRevocationSync(second.app)
const receiver = await adminReceiver(app)

/** Moves the shared clock, the revocation lists with it (else they look stale and requests get 503). */
async function advance (seconds: number): Promise<void> {
  clock.advance(seconds)
  await Promise.all([app.revocations.sync(), second.app.revocations.sync()])
}

async function revokeSessions (count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const user = await signup(app)
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
    ids.push(user.sessionId)
  }
  return ids
}

t.test('a SET handed out is leased; acknowledged, it is done; not acknowledged, it comes back after the lease', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  const [acked, unacked] = await revokeSessions(2)
  const first = await poll(app, receiver, stream.stream_id)
  const jtis = Object.keys(first.sets)
  t.equal(jtis.length, 2)
  t.same((await poll(app, receiver, stream.stream_id)).sets, {}, 'leased: not handed out again at once')
  const byJti = new Map<string, string>()
  for (const jti of jtis) byJti.set(jti, ((await verifySet(app, first.sets[jti]!, stream.aud)).payload.sub_id.session as { id: string }).id)
  const ackJti = jtis.find((jti) => byJti.get(jti) === acked)!
  t.same((await poll(app, receiver, stream.stream_id, { ack: [ackJti], returnImmediately: true })).sets, {}, 'an acknowledgement alone brings nothing')

  await advance(31)
  const again = await poll(app, receiver, stream.stream_id)
  t.same(Object.keys(again.sets), jtis.filter((jti) => jti !== ackJti), 'only the unacknowledged one comes back, with its jti')
  t.equal(byJti.get(Object.keys(again.sets)[0]!), unacked)
  const row = await app.db.securityEvent.findUniqueOrThrow({ where: { id: Object.keys(again.sets)[0]! } })
  t.equal(row.attempts, 2, 'its second delivery')
  await poll(app, receiver, stream.stream_id, { ack: Object.keys(again.sets), returnImmediately: true })
  await advance(31)
  t.same((await poll(app, receiver, stream.stream_id)).sets, {}, 'both done')
  t.equal(await app.db.securityEvent.count({ where: { streamId: stream.stream_id, deliveredAt: { not: null } } }), 2)
})

t.test('setErrs: a SET the receiver refuses is never sent again, its error kept', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  await revokeSessions(1)
  const [jti] = Object.keys((await poll(app, receiver, stream.stream_id)).sets)
  await poll(app, receiver, stream.stream_id, { setErrs: { [jti!]: { err: 'invalid_key', description: 'not our key' } }, returnImmediately: true })
  await advance(31)
  t.same((await poll(app, receiver, stream.stream_id)).sets, {})
  const row = await app.db.securityEvent.findUniqueOrThrow({ where: { id: jti! } })
  t.ok(row.deadAt)
  t.equal(row.lastError, 'invalid_key: not our key')
})

t.test('acknowledgements only touch the receiver\'s own stream', async (t) => {
  const mine = await createStream(app, receiver)
  await drain(app, receiver, mine)
  await revokeSessions(1)
  const [jti] = Object.keys((await poll(app, receiver, mine.stream_id)).sets)
  const other = await adminReceiver(app)
  const theirs = await createStream(app, other)
  await poll(app, other, theirs.stream_id, { ack: [jti!, 'not-a-uuid'], setErrs: { [jti!]: { err: 'x' } }, returnImmediately: true })
  const row = await app.db.securityEvent.findUniqueOrThrow({ where: { id: jti! } })
  t.equal(row.deliveredAt, null)
  t.equal(row.deadAt, null)
  t.equal((await pollRequest(app, other, mine.stream_id)).statusCode, 404, 'another receiver\'s stream is not found')
})

t.test('maxEvents and moreAvailable; maxEvents 0 only acknowledges', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  const revoked = await revokeSessions(5)
  const page = await poll(app, receiver, stream.stream_id, { maxEvents: 2, returnImmediately: true })
  t.equal(Object.keys(page.sets).length, 2)
  t.equal(page.moreAvailable, true)
  const none = await poll(app, receiver, stream.stream_id, { maxEvents: 0, ack: Object.keys(page.sets) })
  t.same(none, { sets: {} })
  const rest = await poll(app, receiver, stream.stream_id, { maxEvents: 10, returnImmediately: true })
  t.equal(Object.keys(rest.sets).length, 3)
  t.notOk(rest.moreAvailable)
  const sessions = []
  for (const set of [...Object.values(page.sets), ...Object.values(rest.sets)]) sessions.push(((await verifySet(app, set, stream.aud)).payload.sub_id.session as { id: string }).id)
  t.same(sessions, revoked, 'oldest first')
})

t.test('a long poll answers within a second of a revocation, and empty after its wait', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  const user = await signup(app)
  const started = performance.now()
  const waiting = poll(app, receiver, stream.stream_id, { returnImmediately: false })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const revokedAt = performance.now()
  // Revoked through the other instance: the waiting poll learns of it through the database.
  await second.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const answer = await waiting
  const latency = performance.now() - revokedAt
  t.equal(Object.keys(answer.sets).length, 1)
  t.ok(latency < 1_000, `answered ${latency.toFixed(0)} ms after the revocation (waited ${(revokedAt - started).toFixed(0)} ms before it)`)
  await poll(app, receiver, stream.stream_id, { ack: Object.keys(answer.sets), maxEvents: 0 })

  const emptyStarted = performance.now()
  const empty = await poll(app, receiver, stream.stream_id, { returnImmediately: false })
  const waited = performance.now() - emptyStarted
  t.same(empty, { sets: {} })
  t.ok(waited >= 4_500 && waited < 7_000, `empty after ${waited.toFixed(0)} ms`)
})

t.test('two instances polling one stream: no SET handed out twice, except an unacknowledged one after its lease', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  const revoked = await revokeSessions(12)
  const seen: string[] = []
  for (let round = 0; round < 4; round++) {
    const answers = await Promise.all([
      poll(app, receiver, stream.stream_id, { maxEvents: 2, returnImmediately: true }),
      poll(second.app, receiver, stream.stream_id, { maxEvents: 2, returnImmediately: true }),
      poll(app, receiver, stream.stream_id, { maxEvents: 1, returnImmediately: true }),
    ])
    for (const answer of answers) seen.push(...Object.keys(answer.sets))
  }
  t.equal(seen.length, 12, `${seen.length} SETs handed out`)
  t.equal(new Set(seen).size, seen.length, 'none twice')
  // Nothing acknowledged: after the lease, each comes back once more, on either instance.
  await advance(31)
  const again = await Promise.all([
    poll(app, receiver, stream.stream_id, { maxEvents: 100, returnImmediately: true }),
    poll(second.app, receiver, stream.stream_id, { maxEvents: 100, returnImmediately: true }),
  ])
  const redelivered = again.flatMap((answer) => Object.keys(answer.sets))
  t.same(redelivered.sort(), [...seen].sort(), 'each unacknowledged SET once more')
  const sessions = new Set<string>()
  for (const answer of again) for (const set of Object.values(answer.sets)) sessions.add(((await verifySet(app, set, stream.aud)).payload.sub_id.session as { id: string }).id)
  t.same([...sessions].sort(), [...revoked].sort())
  await poll(app, receiver, stream.stream_id, { ack: redelivered, maxEvents: 0 })
})

t.test('a paused stream answers nothing and holds; a malformed poll is 400', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  await app.inject({ method: 'POST', url: '/ssf/status', headers: receiver.headers, payload: { stream_id: stream.stream_id, status: 'paused' } })
  const [sid] = await revokeSessions(1)
  t.same(await poll(app, receiver, stream.stream_id), { sets: {} })
  await app.inject({ method: 'POST', url: '/ssf/status', headers: receiver.headers, payload: { stream_id: stream.stream_id, status: 'enabled' } })
  t.same(revokedSessions(await drain(app, receiver, stream)), [sid])
  const bad = await pollRequest(app, receiver, stream.stream_id, { maxEvents: -1 })
  t.equal(bad.statusCode, 400)
  t.equal(json<{ code: string }>(bad).code, 'validation_failed')
})

t.test('a waiting long poll of a stream deleted (on another instance) answers 404 at once', async (t) => {
  const stream = await createStream(app, receiver)
  await drain(app, receiver, stream)
  const waiting = pollRequest(app, receiver, stream.stream_id, { returnImmediately: false })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const deletedAt = performance.now()
  t.equal((await second.app.inject({ method: 'DELETE', url: `/ssf/stream?stream_id=${stream.stream_id}`, headers: receiver.headers })).statusCode, 204)
  const answer = await waiting
  const latency = performance.now() - deletedAt
  t.equal(answer.statusCode, 404)
  t.equal(json<{ code: string }>(answer).code, 'stream_not_found')
  t.ok(latency < 1_000, `answered ${latency.toFixed(0)} ms after the deletion`)
})

t.test('closing the service answers a waiting long poll at once', async (t) => {
  const third = await buildTestApp({}, { database, clock })
  const stream = await createStream(third.app, receiver)
  await drain(third.app, receiver, stream)
  const waiting = poll(third.app, receiver, stream.stream_id, { returnImmediately: false })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const started = performance.now()
  await third.close()
  const answer = await waiting
  t.same(answer, { sets: {} })
  t.ok(performance.now() - started < 3_000, `closed in ${(performance.now() - started).toFixed(0)} ms`)
})
