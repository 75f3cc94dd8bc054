import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Redis } from 'ioredis'
import { ApiError } from '../../errors.js'
import { PROJECT_ROOT } from '../../paths.js'
import { errorResponses } from '../../http/error-schemas.js'
import { Health, Readiness } from './schemas.js'

/** How long /ready waits for Redis before calling it down. */
const REDIS_PROBE_TIMEOUT_MS = 1_000

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  // Read once here: /health does no I/O.
  const version = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  const redisState = redisProbe(fastify.redis)

  fastify.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'The process is up: its version and uptime (no I/O)', response: { 200: Health } } },
    async () => ({ status: 'ok' as const, version, uptimeSeconds: Math.round(process.uptime() * 1000) / 1000 })
  )

  fastify.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'The database is reachable; its latency and migration level, the signing key, Redis and SMTP',
        response: { 200: Readiness, ...errorResponses(503) },
      },
    },
    async () => {
      // One round trip both proves the database answers and reads the migration level.
      let migrations: { latest: string | null; applied: number }
      const started = performance.now()
      try {
        const [row] = await fastify.db.$queryRaw<{ latest: string | null; applied: number }[]>`
          SELECT max(migration_name) AS latest, count(*)::int AS applied
            FROM _prisma_migrations
           WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`
        migrations = row ?? { latest: null, applied: 0 }
      } catch {
        throw new ApiError('database_unavailable', 'the database is not reachable', { 'retry-after': '2' })
      }
      const latencyMs = round(performance.now() - started)
      const delivery = fastify.mailDelivery
      return {
        status: 'ok' as const,
        database: { latencyMs, migration: migrations.latest, appliedMigrations: migrations.applied },
        signingKeyId: fastify.keys.currentKey()?.kid ?? null,
        redis: await redisState(),
        smtp: delivery ? { status: 'configured' as const, ...delivery.totals } : { status: 'not_configured' as const },
      }
    }
  )
}

const round = (ms: number) => Math.round(ms * 100) / 100

type RedisState = { status: 'not_configured' } | { status: 'up'; latencyMs: number } | { status: 'down' }

/**
 * Redis's state for /ready, through the client the rate limits use: a ping
 * within REDIS_PROBE_TIMEOUT_MS. A client still connecting (just after the
 * start) is waited for; one that lost its server answers "down" at once
 * (the client queues nothing while offline).
 */
function redisProbe (redis: Redis | null): () => Promise<RedisState> {
  if (!redis) return async () => ({ status: 'not_configured' })
  return async () => {
    const started = performance.now()
    const signal = AbortSignal.timeout(REDIS_PROBE_TIMEOUT_MS)
    try {
      // events.once rejects on the client's 'error' event, and on the timeout.
      if (redis.status === 'connecting' || redis.status === 'connect') await once(redis, 'ready', { signal })
      signal.throwIfAborted()
      // Promise.race subscribes to both, so the timeout's later rejection is handled.
      const timedOut = new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
      await Promise.race([redis.ping(), timedOut])
      return { status: 'up', latencyMs: round(performance.now() - started) }
    } catch {
      return { status: 'down' }
    }
  }
}

export default health
