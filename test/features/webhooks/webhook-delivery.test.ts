import t from 'tap'
import { appsOn, json, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { injectAs, signup, signupAdmin } from '../../helpers/users.js'
import { WebhookReceiver, type ReceivedMessage } from '../../helpers/webhook-receiver.js'
import { recordAuditEvent } from '../../../src/shared/audit.js'

/**
 * Webhook delivery (DESIGN §3.18), checked at receipt by the standardwebhooks
 * package: every audit event to the endpoints subscribed to it, at least
 * once through a receiver that is down or failing, the same webhook-id on
 * every attempt, a signature made anew for each, nothing for a rolled-back
 * change, no duplicate across two instances.
 */

const database = await createTestDatabase()
t.teardown(() => database.drop())
const appsOnDatabase = appsOn(database)
/** An app on the shared database, with no endpoint left by an earlier test (its worker would deliver their events too). */
const appOn: typeof appsOnDatabase = async (t, env) => {
  const testApp = await appsOnDatabase(t, env)
  await testApp.app.db.webhookEndpoint.deleteMany({})
  return testApp
}
// Sign-ups make the events: bcrypt queues without shedding (a loaded machine would answer some 503).
const ENV = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '50', WEBHOOK_RETRY_BASE_SECONDS: '2', PASSWORD_QUEUE_MAX_WAIT_MS: '0' }

interface Registered {
  id: string
  secret: string
}

async function register (testApp: TestApp, receiver: WebhookReceiver, events: string[], adminToken?: string): Promise<Registered & { adminToken: string }> {
  const token = adminToken ?? (await signupAdmin(testApp.app)).access_token
  const created = await injectAs(testApp.app, token, 'POST', '/admin/webhooks', { url: receiver.url, events })
  t.equal(created.statusCode, 201, 'registered')
  const body = json<Registered>(created)
  receiver.secrets.push(body.secret)
  return { ...body, adminToken: token }
}

const bodyOf = (message: ReceivedMessage) => JSON.parse(message.body) as { type: string; timestamp: string; data: Record<string, unknown> & { id: string; userId: string | null } }

/**
 * Runs the worker until `done` holds, making each failed delivery due again
 * at once (the backoff is unit-tested with the queue; moving the app's clock
 * would put webhook-timestamp outside the receiver's tolerance).
 */
async function deliverUntil (testApp: TestApp, done: () => boolean, rounds = 60, pauseMs = 20): Promise<void> {
  for (let round = 0; round < rounds && !done(); round++) {
    await testApp.app.db.$executeRaw`UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE next_attempt_at IS NOT NULL`
    await testApp.app.webhookDelivery.deliverOnce()
    if (!done()) await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
}

/** Resolves with the first accepted message whose body has `type`. */
async function acceptedOfType (receiver: WebhookReceiver, type: string): Promise<ReceivedMessage> {
  for (let i = 0; i < 200; i++) {
    const found = receiver.accepted.find((m) => bodyOf(m).type === type)
    if (found) return found
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no ${type} message accepted`)
}

t.test('an event reaches the endpoint subscribed to it as {type, timestamp, data}, data as GET /admin/audit-events shows it', async (t) => {
  const testApp = await appOn(t, ENV)
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  const all = await register(testApp, receiver, ['*'])
  const onlyLogins = await WebhookReceiver.start()
  t.teardown(() => onlyLogins.close())
  await register(testApp, onlyLogins, ['login_succeeded'], all.adminToken)
  const user = await signup(testApp.app)
  const message = await acceptedOfType(receiver, 'user_signed_up')
  t.ok(message!.verified, 'the standardwebhooks package verifies the signature')
  t.match(message!.id, /^evt_\d+$/)
  t.equal(message!.headers['content-type'], 'application/json')
  const body = bodyOf(message!)
  t.same(Object.keys(body), ['type', 'timestamp', 'data'], 'exactly {type, timestamp, data}')
  t.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'RFC 3339')
  const listed = json<{ items: Record<string, unknown>[] }>(await injectAs(testApp.app, all.adminToken, 'GET', `/admin/audit-events?type=user_signed_up&userId=${user.id}`))
  t.same(body.data, listed.items[0], 'data is the audit event as the admin API shows it')
  t.equal(body.data.userId, user.id)
  t.equal(`evt_${body.data.id}`, message!.id, 'webhook-id names the event')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(onlyLogins.received.map((m) => bodyOf(m).type).filter((type) => type !== 'login_succeeded'), [], 'an endpoint gets only the types it subscribed to')
})

t.test('a receiver that is down, then answers 500, then recovers: every event arrives, with one webhook-id and a new signature per attempt', async (t) => {
  const testApp = await appOn(t, { ...ENV, WEBHOOK_POLL_INTERVAL_MS: '600000' })
  const receiver = await WebhookReceiver.start()
  const url = receiver.url
  t.teardown(() => receiver.close())
  const hook = await register(testApp, receiver, ['user_signed_up'])
  await testApp.app.webhookDelivery.idle()
  await receiver.close()
  for (let i = 0; i < 5; i++) await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  const afterDown = await testApp.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
  t.equal(afterDown.length, 5)
  t.ok(afterDown.every((d) => d.deliveredAt === null && d.attempts === 1 && d.lastError !== null), 'connection refused: a failed attempt each')

  // The receiver comes back on the same port, answering 500 twice per message.
  const again = await WebhookReceiver.start()
  t.teardown(() => again.close())
  await testApp.app.inject({ method: 'GET', url: '/health' })
  const port = new URL(url).port
  const moved = await injectAs(testApp.app, hook.adminToken, 'PATCH', `/admin/webhooks/${hook.id}`, { url: again.url })
  t.equal(moved.statusCode, 200, `the endpoint now points at the receiver (was port ${port})`)
  again.secrets.push(hook.secret)
  const failures = new Map<string, number>()
  again.answer = (message) => {
    const seen = failures.get(message.id) ?? 0
    failures.set(message.id, seen + 1)
    return seen < 2 ? 500 : 204
  }
  // A second apart, so each attempt has its own webhook-timestamp.
  await deliverUntil(testApp, () => again.accepted.length >= 5, 10, 1000)
  t.equal(again.accepted.length, 5, 'all five delivered')
  t.ok(again.received.every((m) => m.verified), 'every attempt verifies')
  for (const id of new Set(again.received.map((m) => m.id))) {
    const attempts = again.received.filter((m) => m.id === id)
    t.equal(attempts.length, 3, `${id}: two 500s, then delivered`)
    t.equal(new Set(attempts.map((m) => m.body)).size, 1, 'the same body on every attempt')
    t.equal(new Set(attempts.map((m) => m.timestamp)).size, 3, 'a timestamp of its own for each attempt')
    t.equal(new Set(attempts.map((m) => m.signature)).size, 3, 'and a signature made anew for it')
  }
  const rows = await testApp.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id }, include: { attemptsLog: true } })
  t.ok(rows.every((d) => d.deliveredAt !== null && d.attempts === 4 && d.lastStatus === 204), 'delivered at the fourth attempt, with the answer recorded')
  t.ok(rows.every((d) => d.attemptsLog.length === 4), 'each attempt logged')
  const listed = json<{ items: { status: string; attemptLog: { status: number | null }[] }[] }>(
    await injectAs(testApp.app, hook.adminToken, 'GET', `/admin/webhooks/${hook.id}/deliveries`)
  )
  t.same(listed.items[0]!.attemptLog.map((a) => a.status), [204, 500, 500, null], 'the admin API shows the attempts, newest first')
  const counted = await testApp.app.metrics.registry.getSingleMetric('auth_webhook_deliveries_total')!.get()
  const byResult = Object.fromEntries(counted.values.map((v) => [v.labels.result, v.value]))
  t.equal(byResult.delivered, 5, 'auth_webhook_deliveries_total{result="delivered"}')
  t.equal(byResult.failed, 15, 'and {result="failed"}: one refused connection and two 500s each')
})

t.test('a redirect is a failed attempt and is not followed', async (t) => {
  const testApp = await appOn(t, { ...ENV, WEBHOOK_POLL_INTERVAL_MS: '600000' })
  const target = await WebhookReceiver.start()
  t.teardown(() => target.close())
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  receiver.answer = () => ({ status: 307, headers: { location: target.url } })
  const hook = await register(testApp, receiver, ['user_signed_up'])
  await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  t.equal(receiver.received.length, 1)
  t.equal(target.received.length, 0, 'the redirect target got nothing')
  const [row] = await testApp.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
  t.equal(row!.deliveredAt, null)
  t.equal(row!.lastStatus, 307)
  t.match(row!.lastError, /redirects are not followed/)
})

t.test('nothing is emitted for a change that rolled back', async (t) => {
  const testApp = await appOn(t, ENV)
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  const hook = await register(testApp, receiver, ['*'])
  await testApp.app.webhookDelivery.idle()
  const before = await testApp.app.db.webhookDelivery.count({ where: { endpointId: hook.id } })
  const user = await signup(testApp.app)
  await t.rejects(
    testApp.app.db.$transaction(async (tx) => {
      await tx.user.update({ where: { id: user.id }, data: { disabled: true } })
      await recordAuditEvent(tx, { type: 'user_disabled', userId: user.id })
      throw new Error('the change fails after its audit event was written')
    })
  )
  const rows = await testApp.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
  t.equal(rows.length, before + 1, 'only the sign-up: no delivery row for the rolled-back event')
  await receiver.waitForAccepted(before + 1)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.notOk(receiver.received.some((m) => bodyOf(m).type === 'user_disabled'), 'nothing sent for it')
})

t.test('dead after WEBHOOK_MAX_ATTEMPTS; an admin retry delivers it with the same webhook-id', async (t) => {
  const testApp = await appOn(t, { ...ENV, WEBHOOK_MAX_ATTEMPTS: '3', WEBHOOK_POLL_INTERVAL_MS: '600000' })
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  receiver.answer = () => 503
  const hook = await register(testApp, receiver, ['user_signed_up'])
  await signup(testApp.app)
  await deliverUntil(testApp, () => receiver.received.length >= 3)
  await testApp.app.webhookDelivery.deliverOnce()
  const [dead] = await testApp.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
  t.ok(dead!.deadAt, 'dead after three attempts')
  t.equal(dead!.nextAttemptAt, null)
  t.equal(receiver.received.length, 3, 'no fourth attempt')
  const listed = json<{ items: { id: string; status: string }[] }>(await injectAs(testApp.app, hook.adminToken, 'GET', `/admin/webhooks/${hook.id}/deliveries?status=dead`))
  t.equal(listed.items.length, 1)
  receiver.answer = () => 200
  const retried = await injectAs(testApp.app, hook.adminToken, 'POST', `/admin/webhooks/${hook.id}/deliveries/${dead!.id}/retry`)
  t.equal(retried.statusCode, 202)
  t.equal(json<{ status: string }>(retried).status, 'pending')
  await deliverUntil(testApp, () => receiver.accepted.length >= 1)
  t.equal(receiver.accepted[0]!.id, receiver.received[0]!.id, 'the same webhook-id as the failed attempts')
  t.equal((await injectAs(testApp.app, hook.adminToken, 'POST', `/admin/webhooks/${hook.id}/deliveries/${hook.id}/retry`)).statusCode, 404, 'an unknown delivery')
})

t.test('an endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is disabled and its owner emailed', async (t) => {
  const testApp = await appOn(t, { ...ENV, WEBHOOK_DISABLE_AFTER_DAYS: '2', WEBHOOK_POLL_INTERVAL_MS: '600000' })
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  receiver.answer = () => 500
  const owner = await signupAdmin(testApp.app)
  const hook = await register(testApp, receiver, ['user_signed_up'], owner.access_token)
  await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  let endpoint = await testApp.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
  t.ok(endpoint.failingSince, 'failing since the first failure')
  t.equal(endpoint.enabled, true)
  testApp.clock.advance(86_400)
  await signup(testApp.app)
  await deliverUntil(testApp, () => false, 3)
  t.equal((await testApp.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })).enabled, true, 'one day: still enabled')
  testApp.clock.advance(2 * 86_400)
  await testApp.app.webhookDelivery.deliverOnce()
  endpoint = await testApp.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
  t.equal(endpoint.enabled, false, 'disabled after two days of failures')
  t.match(endpoint.disabledReason, /failed for 2 days/)
  const pending = await testApp.app.db.webhookDelivery.count({ where: { endpointId: hook.id, deliveredAt: null, deadAt: null } })
  t.equal(pending, 0, 'its undelivered events are parked as dead')
  const mail = await testApp.app.db.emailOutbox.findMany({ where: { template: 'webhook_disabled' } })
  t.equal(mail.length, 1)
  t.equal(mail[0]!.recipient, owner.email, 'the owner is told')
  t.equal((mail[0]!.data as { url: string }).url, receiver.url)
  const audit = await testApp.app.db.auditEvent.findFirst({ where: { type: 'webhook_disabled' } })
  t.equal((audit?.details as { webhookId?: string } | undefined)?.webhookId, hook.id, 'audited')
  const count = receiver.received.length
  await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  t.equal(receiver.received.length, count, 'a disabled endpoint gets nothing')
  receiver.answer = () => 200
  const admin = await signupAdmin(testApp.app)
  const enabled = await injectAs(testApp.app, admin.access_token, 'PATCH', `/admin/webhooks/${hook.id}`, { enabled: true })
  t.equal(json<{ enabled: boolean; failingSince: string | null }>(enabled).enabled, true)
  t.equal(json<{ failingSince: string | null }>(enabled).failingSince, null)
})

t.test('a rotated secret: both sign each message for a day, so a receiver on either verifies', async (t) => {
  const testApp = await appOn(t, { ...ENV, WEBHOOK_POLL_INTERVAL_MS: '600000' })
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  const hook = await register(testApp, receiver, ['user_signed_up'])
  const rotated = await injectAs(testApp.app, hook.adminToken, 'POST', `/admin/webhooks/${hook.id}/secret`)
  t.equal(rotated.statusCode, 200)
  const secret = json<{ secret: string }>(rotated).secret
  t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.not(secret, hook.secret)
  await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  const [message] = receiver.accepted
  t.equal(message!.signature.split(' ').length, 2, 'two signatures')
  receiver.secrets = [secret]
  t.ok(verifies(receiver, message!), 'verifies under the new secret')
  receiver.secrets = [hook.secret]
  t.ok(verifies(receiver, message!), 'and under the old one')
  testApp.clock.advance(86_401)
  await signup(testApp.app)
  await testApp.app.webhookDelivery.deliverOnce()
  t.equal(receiver.accepted.at(-1)!.signature.split(' ').length, 1, 'after a day, the new secret alone')
})

function verifies (receiver: WebhookReceiver, message: ReceivedMessage): boolean {
  return (receiver as unknown as { verify(body: string, headers: object): boolean }).verify(message.body, message.headers)
}

t.test('two instances: every event delivered once, by either', async (t) => {
  const a = await appOn(t, { ...ENV, WEBHOOK_POLL_INTERVAL_MS: '20' })
  const b = await appOn(t, { ...ENV, WEBHOOK_POLL_INTERVAL_MS: '20' })
  const receiver = await WebhookReceiver.start()
  t.teardown(() => receiver.close())
  const hook = await register(a, receiver, ['user_signed_up'])
  await a.app.webhookDelivery.idle()
  receiver.received.length = 0
  const before = { a: a.app.webhookDelivery.totals.delivered, b: b.app.webhookDelivery.totals.delivered }
  const count = 120
  for (let i = 0; i < count; i += 10) {
    const answers = await Promise.all(Array.from({ length: 10 }, (_, j) => (j % 2 === 0 ? a : b).app.inject({ method: 'POST', url: '/auth/signup', payload: { email: `two-${i + j}-${Date.now()}@example.com`, password: 'correct horse battery staple' } })))
    const refused = answers.filter((answer) => answer.statusCode !== 201)
    if (refused.length > 0) t.fail(`sign-ups refused: ${refused.map((answer) => `${answer.statusCode} ${answer.body}`).join('; ')}`)
  }
  await receiver.waitForAccepted(count, 20_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const ids = receiver.received.map((m) => m.id)
  t.equal(ids.length, count, `${count} requests for ${count} events`)
  t.equal(new Set(ids).size, count, 'no webhook-id twice')
  const byA = a.app.webhookDelivery.totals.delivered - before.a
  const byB = b.app.webhookDelivery.totals.delivered - before.b
  t.equal(byA + byB, count, `delivered by the two instances: ${byA} + ${byB}`)
  t.equal(await a.app.db.webhookDelivery.count({ where: { endpointId: hook.id, deliveredAt: null } }), 0)
})
