import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Accounts } from '../../domain/accounts.js'
import { Administration } from '../../domain/admin.js'
import { ApiKeyStore } from '../../domain/api-keys.js'
import { PasswordHasher } from '../../domain/passwords.js'
import { SessionStore } from '../../domain/sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionStore
    accounts: Accounts
    apiKeys: ApiKeyStore
    administration: Administration
  }
}

async function accounts(fastify: FastifyInstance) {
  const { config, serverKeys } = fastify
  const sessions = new SessionStore(
    fastify.db,
    fastify.sql,
    { refreshTokenHash: serverKeys.refreshTokenHash, refreshTokenSuccessor: serverKeys.refreshTokenSuccessor },
    {
      graceSeconds: config.refreshGraceSeconds,
      now: fastify.now,
      onRevoked: (ids) => fastify.revocations.sessionsRevoked(ids),
    },
  )
  fastify.decorate('sessions', sessions)
  const accounts = new Accounts(fastify.db, new PasswordHasher(config.bcryptCost), sessions)
  fastify.revocations.onUserChange((userId) => accounts.forgetUser(userId))
  fastify.decorate('accounts', accounts)
  fastify.decorate('apiKeys', new ApiKeyStore(fastify.db, serverKeys.apiKeyHash, { now: fastify.now, limitPerUser: config.apiKeyLimitPerUser }))
  fastify.decorate(
    'administration',
    new Administration(fastify.db, sessions, {
      now: fastify.now,
      onUserChanged: (userId, state) => fastify.revocations.userChanged(userId, state),
    }),
  )
}

export default fp(accounts, { name: 'accounts', dependencies: ['config', 'database', 'revocation'] })
