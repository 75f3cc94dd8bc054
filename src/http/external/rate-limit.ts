import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Redis client of REDIS_URL (the rate limits' counters), or null without one; /ready probes it. */
    redis: Redis | null
  }
}

/**
 * @fastify/rate-limit, off by default: routes opt in (the password grant and
 * sign-up, per IP and per account). With REDIS_URL the counters are shared by
 * every instance.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    const { redisUrl } = fastify.config
    let redis: Redis | undefined
    if (redisUrl) {
      redis = new Redis(redisUrl, { connectTimeout: 2_000, maxRetriesPerRequest: 1, enableOfflineQueue: false })
      // Without a listener ioredis prints every failed reconnect to stderr.
      redis.on('error', (error: Error) => fastify.log.warn({ err: error }, 'rate limit: redis unavailable'))
      const client = redis
      fastify.addHook('onClose', async () => {
        // quit() rejects when the connection is down; shutdown must still complete.
        await client.quit().catch(() => client.disconnect())
      })
    }
    fastify.decorate('redis', redis ?? null)
    await fastify.register(rateLimit, {
      global: false,
      ...(redis ? { redis, nameSpace: 'token-auth:rl:' } : {}),
      // A Redis outage must not lock everyone out of logging in.
      skipOnError: true,
    })
  },
  { name: 'rate-limit', dependencies: ['config'] }
)
