import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { maxAccessTokenTtlSeconds } from '../tokens/clients.js'
import { KeyStore } from './signing-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    keys: KeyStore
  }
}

/**
 * Signing keys shared through the database. Each instance re-reads them often
 * enough that a key rotated on another instance is published here well before
 * it starts signing (the publish lead is longer than the JWKS cache age).
 */
async function keys (fastify: FastifyInstance) {
  const { config } = fastify
  const store = new KeyStore(fastify.db, {
    encryptionKey: fastify.serverKeys.signingKeyEncryption,
    publishLeadSeconds: config.keyPublishLeadSeconds,
    maxAccessTokenTtlSeconds: maxAccessTokenTtlSeconds(config),
    now: fastify.now,
  })
  await store.ensureSigningKey()
  const reloadMs = Math.min(60_000, ((config.keyPublishLeadSeconds - config.jwksMaxAgeSeconds) * 1000) / 2)
  const timer = setInterval(() => {
    store.load().catch((error: unknown) => fastify.log.warn({ err: error }, 'signing keys: reload failed'))
  }, reloadMs)
  timer.unref()
  fastify.addHook('onClose', async () => clearInterval(timer))
  fastify.decorate('keys', store)
}

export default fp(keys, { name: 'keys', dependencies: ['config', 'database'] })
