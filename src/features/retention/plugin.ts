import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { maxAccessTokenTtlSeconds } from '../tokens/clients.js'
import { Retention } from './retention.js'
import { REVOCATION_RETENTION_MARGIN_MS } from '../sessions/revocation-plugin.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Deletes what is dead (features/retention/retention.ts); every instance runs a pass every RETENTION_INTERVAL_SECONDS. */
    retention: Retention
  }
}

/** The first pass comes within this long of the start, at a random moment, so instances started together do not sweep together. */
const FIRST_PASS_WITHIN_MS = 5 * 60 * 1000

async function retention (fastify: FastifyInstance) {
  const { config } = fastify
  const store = new Retention(
    fastify.sql,
    {
      sessionRetentionDays: config.sessionRetentionDays,
      auditRetentionDays: config.auditRetentionDays,
      accessTokenLifetimeMs: maxAccessTokenTtlSeconds(config) * 1000 + REVOCATION_RETENTION_MARGIN_MS,
      emailRetentionDays: config.email.retentionDays,
    },
    { now: fastify.now }
  )
  fastify.decorate('retention', store)

  const intervalMs = config.retentionIntervalSeconds * 1000
  if (intervalMs === 0) return
  const stop = new AbortController()
  let running: Promise<void> | null = null
  let timer: NodeJS.Timeout

  const pass = async () => {
    const started = performance.now()
    try {
      const report = await store.runPass(stop.signal)
      const deleted = Object.values(report).reduce((sum, n) => sum + n, 0)
      const ms = Math.round(performance.now() - started)
      if (deleted > 0) fastify.log.info({ retention: report, ms }, 'retention pass deleted dead rows')
      else fastify.log.debug({ ms }, 'retention pass: nothing to delete')
    } catch (error) {
      // The database may be down; the next pass tries again.
      fastify.log.warn({ err: error }, 'retention pass failed')
    }
  }
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      running = pass().finally(() => {
        running = null
        if (!stop.signal.aborted) schedule(intervalMs)
      })
    }, delayMs)
    timer.unref()
  }
  fastify.addHook('onReady', async () => schedule(Math.random() * Math.min(intervalMs, FIRST_PASS_WITHIN_MS)))
  fastify.addHook('onClose', async () => {
    stop.abort()
    clearTimeout(timer)
    await running
  })
}

export default fp(retention, { name: 'retention', dependencies: ['config', 'database'] })
