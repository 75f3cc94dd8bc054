import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { LinkSecrets } from './link-secrets.js'
import { Recovery } from './recovery.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Password reset and email verification by emailed links (features/recovery/recovery.ts). */
    recovery: Recovery
  }
}

async function recovery (fastify: FastifyInstance) {
  const { config } = fastify
  const tokens = new LinkSecrets(fastify.serverKeys.accountTokenHash, fastify.now)
  const service = new Recovery(
    fastify.db,
    { tokens, outbox: fastify.outbox, passwords: fastify.passwordHasher, sessions: fastify.sessions },
    {
      passwordResetTtlSeconds: config.email.passwordResetTtlSeconds,
      emailVerifyTtlSeconds: config.email.emailVerifyTtlSeconds,
      now: fastify.now,
      mailQueued: () => fastify.mailDelivery?.kick(),
      onBackgroundError: (error) => fastify.log.error({ err: error }, 'password reset: the request was answered, its work failed'),
      userChanged: (userId) => fastify.accounts.forgetUser(userId),
    }
  )
  fastify.decorate('recovery', service)
  // Requests answered before the close still get their email queued.
  fastify.addHook('preClose', () => service.settled())
}

export default fp(recovery, { name: 'recovery', dependencies: ['config', 'database', 'outbox', 'mail-delivery', 'accounts', 'sessions'] })
