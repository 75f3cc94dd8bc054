import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Accounts } from './accounts.js'
import { PasswordHasher } from './passwords.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Sign-up, password logins and password changes (features/accounts/accounts.ts). */
    accounts: Accounts
    /** The bcrypt hasher, its queue bound included, for every other place that sets a password. */
    passwordHasher: PasswordHasher
  }
}

async function accounts (fastify: FastifyInstance) {
  const { config, metrics } = fastify
  const hasher = new PasswordHasher(config.bcryptCost, {
    maxQueueWaitMs: config.passwordQueueMaxWaitMs,
    queue: { waited: (seconds) => metrics.bcryptQueueWaited(seconds), shed: () => metrics.bcryptShedOne() },
  })
  const accounts = new Accounts(fastify.db, hasher, fastify.sessions, { requireEmailVerification: config.email.requireVerification })
  // Cached user records must not outlive a role or disabled change seen by this instance.
  fastify.revocations.onUserChange((userId) => accounts.forgetUser(userId))
  fastify.decorate('accounts', accounts)
  fastify.decorate('passwordHasher', hasher)
}

export default fp(accounts, { name: 'accounts', dependencies: ['config', 'database', 'revocation', 'sessions', 'metrics'] })
