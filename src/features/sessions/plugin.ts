import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { SessionStore } from './sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Sessions and refresh-token rotation (features/sessions/sessions.ts). */
    sessions: SessionStore
  }
}

/** The session store, telling this instance's revocation list of every session it revokes. */
async function sessions (fastify: FastifyInstance) {
  const { config, serverKeys } = fastify
  fastify.decorate(
    'sessions',
    new SessionStore(
      fastify.db,
      fastify.sql,
      { mac: serverKeys.refreshTokenMac, hash: serverKeys.refreshTokenHash, successor: serverKeys.refreshTokenSuccessor },
      {
        graceSeconds: config.refreshGraceSeconds,
        now: fastify.now,
        onRevoked: (ids) => fastify.revocations.sessionsRevoked(ids),
        onRefresh: (result) => fastify.metrics.refresh(result),
        onReuseDetected: () => fastify.metrics.refreshTokenReused(),
      }
    )
  )
}

export default fp(sessions, { name: 'sessions', dependencies: ['config', 'database', 'revocation', 'metrics'] })
