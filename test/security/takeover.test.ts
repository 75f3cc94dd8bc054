import t from 'tap'
import { createTestDatabase } from '../helpers/database.js'
import { TestSmtpServer } from '../helpers/smtp.js'
import { takeoverCases } from './catalogue-takeover.js'
import { AttackContext, SmtpMailbox } from './context.js'

/**
 * The account-takeover cases of the attack catalogue (catalogue-takeover.ts,
 * ATO-*), run again against a service that delivers its mail over SMTP to a
 * real server (test/helpers/smtp.ts): the intruder's and the owner's
 * mailboxes are what that server received, as each of them would read it.
 * The catalogue (attack-catalogue.test.ts) runs the same cases reading the
 * outbox; here nothing is read from the outbox, whose links are erased once
 * sent.
 */

const smtp = await TestSmtpServer.start()
const database = await createTestDatabase()
const ctx = await AttackContext.create(database, {
  env: { SMTP_URL: smtp.url, EMAIL_POLL_INTERVAL_MS: '25' },
  mailbox: (app) => new SmtpMailbox(app, smtp),
})
t.teardown(async () => {
  await ctx.close()
  await database.drop()
  await smtp.stop()
})

t.test('the service delivers over SMTP, and the cases read the SMTP server', async (t) => {
  t.ok(ctx.app.mailDelivery, 'SMTP_URL is set: mail leaves through the delivery worker')
  t.equal(ctx.mail.kind, 'smtp')
  const verification = await ctx.mail.latest(ctx.victim.email, 'confirm your email address')
  t.type(verification.token, 'string', 'the sign-up\'s verification link arrived with its token')
})

for (const attack of takeoverCases) {
  await t.test(`${attack.id} ${attack.title} [${attack.source}]`, async (t) => {
    await attack.run(ctx, t)
  })
}

t.test('every message was delivered, and no link is left readable in the outbox', async (t) => {
  await ctx.app.recovery.settled()
  // The server accepts a message before the worker records it sent: wait for the record.
  const deadline = Date.now() + 10_000
  while ((await ctx.app.db.emailOutbox.count({ where: { sentAt: null, deadAt: null } })) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const queued = await ctx.app.db.emailOutbox.count()
  t.equal(await ctx.app.db.emailOutbox.count({ where: { sentAt: null } }), 0, 'none pending or parked')
  t.equal(smtp.received.length, queued, `${queued} messages queued, as many received`)
  t.equal(await ctx.app.db.emailOutbox.count({ where: { secretEncrypted: { not: null } } }), 0, 'no secret left in the outbox')
})
