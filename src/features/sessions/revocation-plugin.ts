import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { maxAccessTokenTtlSeconds } from '../tokens/clients.js'
import { RevocationList } from './revocation.js'

declare module 'fastify' {
  interface FastifyInstance {
    revocations: RevocationList
  }
}

/** Revocations reach every instance within this interval (the contract asks for one second). */
export const REVOCATION_SYNC_MS = 500
/** Margin for verifiers whose clocks lag. */
export const REVOCATION_RETENTION_MARGIN_MS = 60_000

async function revocation (fastify: FastifyInstance) {
  const list = new RevocationList(fastify.db, {
    retentionMs: maxAccessTokenTtlSeconds(fastify.config) * 1000 + REVOCATION_RETENTION_MARGIN_MS,
    now: fastify.now,
  })
  await list.sync()
  let running: Promise<void> | null = null
  const timer = setInterval(() => {
    if (running) return
    running = list
      .sync()
      .catch((error: unknown) => fastify.log.warn({ err: error }, 'revocation sync failed'))
      .finally(() => {
        running = null
      })
  }, REVOCATION_SYNC_MS)
  timer.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
  fastify.decorate('revocations', list)
}

export default fp(revocation, { name: 'revocation', dependencies: ['config', 'database'] })
