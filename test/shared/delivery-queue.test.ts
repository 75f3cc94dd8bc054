import t from 'tap'
import { Prisma } from '../../src/generated/prisma/client.js'
import { DeliveryQueue, retryDelaySeconds, type ClaimedRow } from '../../src/shared/delivery-queue.js'
import { fileTestApp } from '../helpers/app.js'

/**
 * The one delivery mechanism of every outbox (shared/delivery-queue.ts),
 * driven directly on a queue table (webhook_deliveries): claims under a
 * lease that two claimers never share, outcomes written only for the attempt
 * claimed, backoff, dead rows, and an admin's requeue.
 */

const { app, clock } = await fileTestApp({ WEBHOOK_POLL_INTERVAL_MS: '600000' })
const db = app.db

interface Row extends ClaimedRow {
  eventId: bigint
}
const queue = new DeliveryQueue<Row>(db, { table: 'webhook_deliveries', doneColumn: 'delivered_at', columns: 'q.event_id AS "eventId"' }, {
  maxAttempts: 3,
  retryBaseSeconds: 10,
  leaseSeconds: 60,
  now: clock.now,
})

const endpointId = '11111111-1111-4111-8111-111111111111'
await db.webhookEndpoint.create({ data: { id: endpointId, url: 'https://93.184.215.14/', events: [], secretEncrypted: new Uint8Array(28), enabled: false } })

async function rows (n: number): Promise<void> {
  const at = new Date(clock.now() - 1000)
  await db.$executeRaw`INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, next_attempt_at) SELECT ${endpointId}::uuid, g, ${at}, ${at} FROM generate_series(1, ${n}) g`
}
const mine = Prisma.sql`q.endpoint_id = ${endpointId}::uuid`

t.beforeEach(async () => {
  await db.webhookDelivery.deleteMany({ where: { endpointId } })
})

t.test('backoff doubles from the base, capped at an hour', async (t) => {
  t.same([1, 2, 3].map((n) => retryDelaySeconds(n, 5)), [5, 10, 20])
  t.equal(retryDelaySeconds(15, 5), 3600)
})

t.test('concurrent claims take disjoint rows, and a leased row is not due until its lease ends', async (t) => {
  await rows(50)
  const claims = await Promise.all(Array.from({ length: 5 }, () => queue.claim(20, { where: mine })))
  const ids = claims.flat().map((row) => row.id)
  t.equal(ids.length, 50, 'every row claimed once')
  t.equal(new Set(ids).size, 50, 'by one claimer each')
  t.ok(claims.flat().every((row) => row.attempts === 1))
  t.same(await queue.claim(50, { where: mine }), [], 'leased: nothing due')
  clock.advance(61)
  t.equal((await queue.claim(50, { where: mine })).length, 50, 'the lease ended (a dead worker): due again')
})

t.test('an outcome is written only for the attempt claimed', async (t) => {
  await rows(1)
  const [first] = await queue.claim(1, { where: mine })
  clock.advance(61)
  const [second] = await queue.claim(1, { where: mine })
  t.equal(second!.attempts, 2)
  t.equal(await queue.delivered([first!]), 0, "the first claimer's late success is ignored")
  t.equal(await queue.delivered([second!], [{ column: 'last_status', type: 'int', values: [204] }]), 1)
  const row = await db.webhookDelivery.findFirstOrThrow({ where: { endpointId } })
  t.ok(row.deliveredAt)
  t.equal(row.nextAttemptAt, null)
  t.equal(row.lastStatus, 204, "the caller's column, per row")
  t.equal(await queue.failed(second!, 'late'), 'failed', 'a failure after the delivery…')
  t.ok((await db.webhookDelivery.findFirstOrThrow({ where: { endpointId } })).deliveredAt, '…changes nothing')
})

t.test('failures back off, then the row is dead; a requeue brings it back with a fresh budget', async (t) => {
  await rows(1)
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [row] = await queue.claim(1, { where: mine })
    t.equal(row!.attempts, attempt)
    const outcome = await queue.failed(row!, `attempt ${attempt} failed`)
    t.equal(outcome, attempt < 3 ? 'failed' : 'dead')
    if (attempt < 3) {
      const stored = await db.webhookDelivery.findFirstOrThrow({ where: { endpointId } })
      const wait = stored.nextAttemptAt!.getTime() - clock.now()
      t.ok(Math.abs(wait - retryDelaySeconds(attempt, 10) * 1000) < 1000, `due after the backoff (${wait} ms)`)
      t.same(await queue.claim(1, { where: mine }), [], 'not before')
      clock.advance(retryDelaySeconds(attempt, 10))
    }
  }
  const dead = await db.webhookDelivery.findFirstOrThrow({ where: { endpointId } })
  t.ok(dead.deadAt)
  t.equal(dead.lastError, 'attempt 3 failed')
  t.equal(await queue.requeue(Prisma.sql`id = ${dead.id}::uuid`), 1)
  const [again] = await queue.claim(1, { where: mine })
  t.equal(again!.attempts, 1, 'a fresh budget')
  const final = await queue.failed(again!, 'nothing to deliver', { final: true })
  t.equal(final, 'dead', 'final: dead at once')
})
