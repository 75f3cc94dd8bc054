import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { CredentialNotices } from './credential-notices.js'
import { EmailTemplates } from './email-templates.js'
import { Outbox } from './outbox.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The transactional email outbox (features/email/outbox.ts). */
    outbox: Outbox
    /** The "new way into your account" notices (features/email/credential-notices.ts). */
    credentialNotices: CredentialNotices
  }
}

async function outbox (fastify: FastifyInstance) {
  const { config } = fastify
  const { email } = config
  // Without SMTP the development log shows each link, so `npm start` alone
  // lets a new user click through; never in production or tests.
  const logLinks = email.devMailbox && config.env === 'development'
  if (!email.smtpUrl) {
    const where = email.devMailbox ? 'the development mailbox (GET /admin/outbox, the dashboard)' : 'the outbox'
    fastify.log.warn(`email: SMTP_URL is unset; messages stay in ${where} and are never sent`)
  }
  fastify.decorate(
    'outbox',
    new Outbox(fastify.db, {
      encryptionKey: fastify.serverKeys.outboxSecretEncryption,
      templates: new EmailTemplates(),
      productName: email.productName,
      pages: { passwordReset: email.passwordResetUrl, emailVerify: email.emailVerifyUrl, credentialRemoval: email.credentialRemovalUrl },
      devMailbox: email.devMailbox,
      now: fastify.now,
      ...(logLinks
        ? {
            onEnqueued: (message) =>
              fastify.log.info(
                { to: message.recipient, template: message.template, subject: message.rendered.subject, link: message.link },
                'development mailbox: message queued (not sent: SMTP_URL is unset)'
              ),
          }
        : {}),
    })
  )
  fastify.decorate('credentialNotices', new CredentialNotices(fastify.outbox, {
    securityPageUrl: email.securityPageUrl,
    mailQueued: () => fastify.mailDelivery?.kick(),
  }))
}

export default fp(outbox, { name: 'outbox', dependencies: ['config', 'database'] })
