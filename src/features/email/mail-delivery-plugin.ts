import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import { MailDelivery, type MailTransport } from './mail-delivery.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The outbox's delivery worker of this instance; null without SMTP_URL (mail stays in the outbox). */
    mailDelivery: MailDelivery | null
  }
}

/** SMTP timeouts: they bound one send, so the claim lease below outlasts any batch. */
const CONNECTION_TIMEOUT_MS = 10_000
const GREETING_TIMEOUT_MS = 10_000
const SOCKET_TIMEOUT_MS = 20_000
const BATCH_SIZE = 10
const LEASE_SECONDS = Math.ceil((BATCH_SIZE * (CONNECTION_TIMEOUT_MS + GREETING_TIMEOUT_MS + SOCKET_TIMEOUT_MS)) / 1000) + 60

function smtpTransport (url: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport({
    url,
    // Connections kept open and reused: a new one per message costs the
    // server's greeting (often a deliberate delay) every time. The pool
    // reconnects by itself after the server drops it.
    pool: true,
    maxConnections: 1,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  })
  return {
    async send (message) {
      await transporter.sendMail({ from, to: message.to, subject: message.subject, text: message.text, html: message.html })
    },
    close: () => transporter.close(),
  }
}

async function mailDelivery (fastify: FastifyInstance) {
  const { email } = fastify.config
  if (!email.smtpUrl) {
    fastify.decorate('mailDelivery', null)
    return
  }
  const worker = new MailDelivery(fastify.workerDb, fastify.outbox, smtpTransport(email.smtpUrl, email.from), {
    maxAttempts: email.maxAttempts,
    retryBaseSeconds: email.retryBaseSeconds,
    batchSize: BATCH_SIZE,
    leaseSeconds: LEASE_SECONDS,
    now: fastify.now,
    log: fastify.log,
  })
  fastify.decorate('mailDelivery', worker)
  fastify.addHook('onReady', async () => worker.start(email.pollIntervalMs))
  // Before the database closes (onClose hooks run in reverse registration order).
  fastify.addHook('onClose', async () => worker.stop())
}

export default fp(mailDelivery, { name: 'mail-delivery', dependencies: ['config', 'database', 'outbox'] })
