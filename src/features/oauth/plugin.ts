import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AuthorizationCodes } from './authorization-codes.js'
import { Consents } from './consents.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Authorization codes (features/oauth/authorization-codes.ts). */
    authorizationCodes: AuthorizationCodes
    /** Users' consents to clients (features/oauth/consents.ts). */
    consents: Consents
  }
}

async function oauth (fastify: FastifyInstance) {
  fastify.decorate('authorizationCodes', new AuthorizationCodes(fastify.db, fastify.serverKeys.authorizationCodeHash, fastify.serverKeys.authorizationCodeAccount, {
    now: fastify.now,
    sessions: fastify.sessions,
  }))
  fastify.decorate('consents', new Consents(fastify.db))
}

export default fp(oauth, { name: 'oauth', dependencies: ['config', 'database', 'sessions'] })
