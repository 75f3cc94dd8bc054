import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { retryDelaySeconds } from '../../../src/features/email/mail-delivery.js'
import type { NewMessage } from '../../../src/features/email/outbox.js'
import { buildTestApp, freePort, json, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { linkToken, TestSmtpServer } from '../../helpers/smtp.js'
import { injectAs, makeAdmin, signup } from '../../helpers/users.js'

/**
 * The outbox and its delivery worker (DESIGN §3.11) against a real SMTP
 * server on a loopback port: end to end, an outage in the middle of a batch,
 * two instances on one database, and messages parked as dead.
 */

const smtp = await TestSmtpServer.start()
t.teardown(() => smtp.stop())

/** Fast polling; retries one second apart (the tests move the clock past them). */
const mailEnv = (url = smtp.url) => ({ SMTP_URL: url, EMAIL_POLL_INTERVAL_MS: '25', EMAIL_RETRY_BASE_SECONDS: '1', EMAIL_FROM: 'Tests <auth@mail.test>' })

let counter = 0
const address = (label: string) => `${label}-${++counter}-${Date.now()}@mail.test`

async function enqueue (app: FastifyInstance, message: Partial<NewMessage> & { recipient: string }): Promise<string> {
  const id = await app.db.$transaction((tx) =>
    app.outbox.enqueue(tx, { template: 'password_changed', data: { email: message.recipient }, ...message } as NewMessage)
  )
  app.mailDelivery?.kick()
  return id
}

const outboxRow = (app: FastifyInstance, id: string) => app.db.emailOutbox.findUniqueOrThrow({ where: { id } })

t.test('retry delays double from the base and are capped at an hour', async (t) => {
  t.same([1, 2, 3, 4].map((n) => retryDelaySeconds(n, 30)), [30, 60, 120, 240])
  t.equal(retryDelaySeconds(20, 30), 3600)
})

t.test('a message is delivered end to end; its secret is erased once sent', async (t) => {
  const app = await buildTestApp(mailEnv())
  t.teardown(() => app.close())
  const recipient = address('reset')
  const secret = 'S3cr3t-token_value-of-the-link-0123456789ab'
  const before = Date.now()
  const id = await enqueue(app.app, { recipient, template: 'password_reset', data: { email: recipient, expiresInMinutes: '30' }, secret })
  const queued = await outboxRow(app.app, id)
  t.ok(queued.secretEncrypted, 'the secret is stored encrypted while queued')
  t.notOk(Buffer.from(queued.secretEncrypted!).includes(Buffer.from(secret)), 'not in clear')

  const mail = await smtp.nextTo(recipient)
  t.equal(mail.from, 'auth@mail.test', 'EMAIL_FROM')
  t.equal(mail.subject, 'token-auth: reset your password', 'subject from the template, with PRODUCT_NAME')
  t.equal(linkToken(mail), secret, 'the link carries the secret')
  t.match(mail.text, `http://auth.test/dashboard/#/reset-password?token=${secret}`, 'the default page: the dashboard, the secret in the fragment')
  t.match(mail.html, `href="http://auth.test/dashboard/#/reset-password?token=${secret}"`, 'the HTML part has the link too')
  t.match(mail.text, 'within 30 minutes')

  // The row is marked sent right after the server accepts it.
  let sent = await outboxRow(app.app, id)
  for (let i = 0; i < 100 && !sent.sentAt; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    sent = await outboxRow(app.app, id)
  }
  t.ok(sent.sentAt, 'sent_at set')
  t.equal(sent.secretEncrypted, null, 'secret erased')
  t.equal(sent.nextAttemptAt, null, 'no longer due')
  t.equal(sent.attempts, 1)
  t.ok(mail.receivedAt - before < 5_000, `delivered ${mail.receivedAt - before} ms after it was queued`)
})

t.test('interpolated values are HTML-escaped in the HTML part only', async (t) => {
  const app = await buildTestApp({ ...mailEnv(), PRODUCT_NAME: 'Links & <Co>' })
  t.teardown(() => app.close())
  const recipient = address('escape')
  await enqueue(app.app, { recipient, data: { email: `"><script>alert(1)</script>${recipient}` } })
  const mail = await smtp.nextTo(recipient)
  t.equal(mail.subject, 'Links & <Co>: your password was changed')
  t.match(mail.text, '"><script>alert(1)</script>', 'plain text as given')
  t.notMatch(mail.html, '<script>', 'no markup from a value')
  t.match(mail.html, '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
  t.match(mail.html, 'Links &amp; &lt;Co&gt;')
})

t.test('a rolled-back transaction sends nothing', async (t) => {
  const app = await buildTestApp(mailEnv())
  t.teardown(() => app.close())
  const recipient = address('rollback')
  await t.rejects(
    app.app.db.$transaction(async (tx) => {
      await app.app.outbox.enqueue(tx, { recipient, template: 'password_changed', data: { email: recipient } })
      throw new Error('the change failed')
    })
  )
  const control = address('control')
  await enqueue(app.app, { recipient: control })
  await smtp.nextTo(control)
  t.equal(smtp.to(recipient).length, 0, 'the rolled-back message was never sent')
  t.equal(await app.app.db.emailOutbox.count({ where: { recipient } }), 0)
})

t.test('SMTP down in the middle of a batch: retried with backoff, delivered once it is back, nothing lost, nothing twice', async (t) => {
  const outage = await TestSmtpServer.start()
  t.teardown(() => outage.stop())
  // Retries ten minutes apart: none is due again before the test moves the clock.
  const app = await buildTestApp({ ...mailEnv(outage.url), EMAIL_MAX_ATTEMPTS: '20', EMAIL_RETRY_BASE_SECONDS: '600' })
  t.teardown(() => app.close())
  // The server goes down right after accepting its 5th message.
  outage.onMessage = (count) => {
    if (count === 5) void outage.stop()
  }
  const recipients = Array.from({ length: 25 }, () => address('outage'))
  await app.app.db.$transaction(async (tx) => {
    for (const recipient of recipients) await app.app.outbox.enqueue(tx, { recipient, template: 'password_changed', data: { email: recipient } })
  })
  app.app.mailDelivery!.kick()
  await outage.waitFor((received) => received.length >= 5)
  // Wait until every other message has failed at least once.
  const where = { recipient: { in: recipients } }
  for (let i = 0; i < 200; i++) {
    const failed = await app.app.db.emailOutbox.count({ where: { ...where, sentAt: null, lastError: { not: null } } })
    if (failed === 20) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  const down = await app.app.db.emailOutbox.findMany({ where: { ...where, sentAt: null } })
  t.equal(down.length, 20, '20 messages wait for a retry')
  t.ok(down.every((row) => row.attempts >= 1 && row.lastError && row.secretEncrypted === null && row.deadAt === null), 'failed, not dead, error recorded')
  t.ok(down.every((row) => row.nextAttemptAt!.getTime() > app.clock.now()), 'each retry is scheduled in the future (backoff)')
  t.match(down[0]!.lastError, /ECONNREFUSED|Connection|connect/i, 'the SMTP client\'s error')
  t.equal(outage.received.length, 5, 'nothing delivered while down')

  await outage.start()
  app.clock.advance(3600)
  await outage.waitFor((received) => received.length >= 25, 20_000)
  // A few more polls: nothing else arrives.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const counts = recipients.map((recipient) => outage.to(recipient).length)
  t.same(counts, recipients.map(() => 1), 'every message delivered exactly once')
  t.equal(outage.received.length, 25)
  t.equal(await app.app.db.emailOutbox.count({ where: { ...where, sentAt: { not: null } } }), 25, 'all marked sent')
  t.equal(app.app.mailDelivery!.totals.sent, 25)
  t.ok(app.app.mailDelivery!.totals.failed >= 20, `${app.app.mailDelivery!.totals.failed} failed attempts counted`)
})

t.test('two instances on one database send each message exactly once', async (t) => {
  const shared = await createTestDatabase()
  const instances: TestApp[] = []
  t.teardown(async () => {
    for (const instance of instances) await instance.close()
    await shared.drop()
  })
  instances.push(await buildTestApp(mailEnv(), { database: shared }), await buildTestApp(mailEnv(), { database: shared }))
  const [a, b] = instances as [TestApp, TestApp]
  const recipients = Array.from({ length: 60 }, () => address('fleet'))
  // Written from both instances, in several transactions, while both poll.
  for (let i = 0; i < recipients.length; i += 10) {
    const app = i % 20 === 0 ? a : b
    await app.app.db.$transaction(async (tx) => {
      for (const recipient of recipients.slice(i, i + 10)) await app.app.outbox.enqueue(tx, { recipient, template: 'password_changed', data: { email: recipient } })
    })
    a.app.mailDelivery!.kick()
    b.app.mailDelivery!.kick()
  }
  await smtp.waitFor(() => recipients.every((recipient) => smtp.to(recipient).length > 0), 30_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(recipients.map((recipient) => smtp.to(recipient).length), recipients.map(() => 1), 'each once')
  const totals = [a.app.mailDelivery!.totals.sent, b.app.mailDelivery!.totals.sent]
  t.equal(totals[0]! + totals[1]!, 60, `sent by the two instances: ${totals.join(' + ')}`)
})

t.test('after EMAIL_MAX_ATTEMPTS failures a message is dead, and admins see it', async (t) => {
  const nowhere = `smtp://127.0.0.1:${await freePort()}`
  const app = await buildTestApp({ ...mailEnv(nowhere), EMAIL_MAX_ATTEMPTS: '3' })
  t.teardown(() => app.close())
  const recipient = address('dead')
  const id = await enqueue(app.app, { recipient, template: 'email_verification', data: { email: recipient, expiresInHours: '24' }, secret: 'a-secret-that-never-goes-out-0123456789abc' })
  for (let i = 0; i < 300; i++) {
    const row = await outboxRow(app.app, id)
    if (row.deadAt) break
    if (row.nextAttemptAt && row.nextAttemptAt.getTime() > app.clock.now() && row.lastError) {
      app.clock.advance(3600)
      app.app.mailDelivery!.kick()
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const row = await outboxRow(app.app, id)
  t.ok(row.deadAt, 'dead')
  t.equal(row.attempts, 3, 'after 3 attempts')
  t.equal(row.nextAttemptAt, null, 'never tried again')
  t.equal(row.secretEncrypted, null, 'its secret erased')
  t.equal(app.app.mailDelivery!.totals.dead, 1)

  const user = await signup(app.app, { label: 'outbox-admin' })
  const admin = await makeAdmin(app.app, user)
  const list = await injectAs(app.app, admin.access_token, 'GET', '/admin/outbox?status=dead')
  t.equal(list.statusCode, 200)
  const items = json<{ items: { id: string; status: string; attempts: number; lastError: string; rendered: unknown; recipient: string }[] }>(list).items
  t.equal(items.length, 1)
  t.match(items[0], { id, status: 'dead', attempts: 3, recipient, rendered: null })
  t.match(items[0]!.lastError, /ECONNREFUSED|connect/i)
  const forUser = await injectAs(app.app, user.access_token, 'GET', '/admin/outbox')
  t.equal(forUser.statusCode, 403, 'admins only')
})

t.test('closing the app mid-batch leaves no message claimed but unsent', async (t) => {
  const app = await buildTestApp(mailEnv())
  const recipients = Array.from({ length: 30 }, () => address('closing'))
  await app.app.db.$transaction(async (tx) => {
    for (const recipient of recipients) await app.app.outbox.enqueue(tx, { recipient, template: 'password_changed', data: { email: recipient } })
  })
  app.app.mailDelivery!.kick()
  await smtp.waitFor(() => smtp.to(recipients[0]!).length > 0)
  const worker = app.app.mailDelivery!
  // Read through a second instance after the first has closed.
  const database = app.database
  const reader = await buildTestApp({}, { database })
  t.teardown(async () => {
    await reader.close()
    await database.drop()
  })
  await app.app.close()
  const rows = await reader.app.db.emailOutbox.findMany({ where: { recipient: { in: recipients } } })
  const delivered = new Set(smtp.received.flatMap((mail) => mail.to))
  t.ok(worker.totals.sent > 0, `${worker.totals.sent} sent before the close finished`)
  for (const row of rows) {
    if (row.sentAt) t.ok(delivered.has(row.recipient), 'a row marked sent was delivered')
    else t.ok(row.nextAttemptAt!.getTime() <= Date.now() + 1000 && !delivered.has(row.recipient), 'an unsent row is due again at once, not leased')
  }
})

t.test('without SMTP_URL mail stays in the outbox, and the development mailbox shows it rendered', async (t) => {
  const app = await buildTestApp({ EMAIL_POLL_INTERVAL_MS: '25' })
  t.teardown(() => app.close())
  t.equal(app.app.mailDelivery, null, 'no worker runs')
  const recipient = address('devbox')
  const secret = 'dev-mailbox-secret-0123456789abcdefghijklmn'
  const id = await enqueue(app.app, { recipient, template: 'password_reset', data: { email: recipient, expiresInMinutes: '30' }, secret })
  const admin = await makeAdmin(app.app, await signup(app.app, { label: 'devbox-admin' }))
  const list = await injectAs(app.app, admin.access_token, 'GET', `/admin/outbox?recipient=${encodeURIComponent(recipient.toUpperCase())}`)
  t.equal(list.statusCode, 200)
  const [item] = json<{ items: { id: string; status: string; rendered: { subject: string; text: string; html: string } | null }[] }>(list).items
  t.match(item, { id, status: 'pending' })
  t.equal(item!.rendered!.subject, 'token-auth: reset your password')
  t.equal(linkToken(item!.rendered!), secret, 'the rendered link, to click through without SMTP')
  t.equal((await outboxRow(app.app, id)).attempts, 0, 'never attempted')

  const production = await buildTestApp({ SMTP_URL: smtp.url }, { database: app.database })
  t.teardown(() => production.close())
  const elsewhere = json<{ items: { id: string; rendered: unknown }[] }>(
    await injectAs(production.app, admin.access_token, 'GET', `/admin/outbox?recipient=${encodeURIComponent(recipient)}`)
  ).items
  t.equal(elsewhere[0]!.rendered, null, 'where mail really goes out, admins never see a rendered link')
})
