import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ApiKeyStore } from './api-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Third-party API keys (features/api-keys/api-keys.ts). */
    apiKeys: ApiKeyStore
  }
}

async function apiKeys (fastify: FastifyInstance) {
  fastify.decorate(
    'apiKeys',
    new ApiKeyStore(fastify.db, fastify.serverKeys.apiKeyHash, { now: fastify.now, limitPerUser: fastify.config.apiKeyLimitPerUser, notices: fastify.credentialNotices })
  )
}

export default fp(apiKeys, { name: 'api-keys', dependencies: ['config', 'database', 'outbox'] })
