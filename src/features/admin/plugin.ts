import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Administration } from './administration.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The admin API's domain: user directory, role and disabled changes, audit log (features/admin/administration.ts). */
    administration: Administration
  }
}

async function administration (fastify: FastifyInstance) {
  fastify.decorate(
    'administration',
    new Administration(fastify.db, fastify.sessions, {
      now: fastify.now,
      onUserChanged: (userId, state) => fastify.revocations.userChanged(userId, state),
    })
  )
}

export default fp(administration, { name: 'administration', dependencies: ['config', 'database', 'revocation', 'sessions'] })
