import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { ApiError } from '../../errors.js'
import { PROJECT_ROOT } from '../../paths.js'
import { errorResponses } from '../../http/error-schemas.js'
import { Health, Readiness } from './schemas.js'

/** How long /ready waits for Redis before calling it down. */
const REDIS_PROBE_TIMEOUT_MS = 1_000

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  // Read once here: /health does no I/O.
  const version = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  const redisState = redisProbe(fastify)

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
 * Redis's state for /ready. The rate-limit plugin keeps its client to
 * itself, so the probe has its own connection, opened at the first /ready
 * (never by /health, nor at start) and kept: ioredis reconnects by itself.
 */
function redisProbe (fastify: FastifyInstance): () => Promise<RedisState> {
  const url = fastify.config.redisUrl
  if (!url) return async () => ({ status: 'not_configured' })
  let client: Redis | undefined
  let connecting: Promise<void> | undefined
  fastify.addHook('onClose', async () => {
    client?.disconnect()
  })
  return async () => {
    if (!client) {
      client = new Redis(url, {
        lazyConnect: true,
        connectTimeout: REDIS_PROBE_TIMEOUT_MS,
        maxRetriesPerRequest: 0,
        // A probe answers "down" at once rather than queueing behind a reconnect.
        enableOfflineQueue: false,
        retryStrategy: (attempt) => Math.min(attempt * 500, 5_000),
      })
      // The rate limiter's own client already warns of an outage.
      client.on('error', (error: Error) => fastify.log.debug({ err: error }, 'ready: redis unavailable'))
      connecting = client.connect().catch(() => undefined)
    }
    const redis = client
    const started = performance.now()
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        (async () => {
          await connecting
          await redis.ping()
        })(),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), REDIS_PROBE_TIMEOUT_MS)
        }),
      ])
      return { status: 'up', latencyMs: round(performance.now() - started) }
    } catch {
      return { status: 'down' }
    } finally {
      clearTimeout(timer)
    }
  }
}

export default health
