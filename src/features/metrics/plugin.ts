import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { OutboxReader, ServiceMetrics } from './metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The service's metrics (features/metrics/metrics.ts): counted always, served only on METRICS_PORT. */
    metrics: ServiceMetrics
    /** The metrics listener's base URL (`http://host:port`) once it listens; null without METRICS_PORT. */
    metricsAddress: string | null
  }
}

/**
 * Decorates the app with its metrics and, with METRICS_PORT set, serves
 * them as Prometheus text at GET /metrics on a listener of their own
 * (METRICS_HOST, default HOST), never on the public port (DESIGN §3.18).
 * The listener opens when the app is ready and closes with it.
 */
async function metrics (fastify: FastifyInstance) {
  const { config } = fastify
  const { port, host } = config.metrics
  const outboxes = new OutboxReader(fastify.sql)
  const service = new ServiceMetrics({
    now: fastify.now,
    defaultMetrics: port !== undefined,
    sources: {
      outboxes: () => outboxes.read(),
      // Read when scraped: these capabilities register after this one.
      revocationSyncedAt: () => (fastify.hasDecorator('revocations') ? fastify.revocations.syncedAt : undefined),
      signingKeyActivatedAt: () => (fastify.hasDecorator('keys') ? fastify.keys.currentKey()?.activatesAt : undefined),
    },
    onSourceError: (error, source) => fastify.log.warn({ err: error, source }, 'metrics: a scrape-time source failed'),
  })
  fastify.decorate('metrics', service)
  fastify.decorate('metricsAddress', null)
  if (port === undefined) return

  const server = createServer((request, response) => {
    answer(request, response).catch((error: unknown) => {
      fastify.log.error({ err: error }, 'metrics: scrape failed')
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      response.end('scrape failed\n')
    })
  })
  // A scraper keeps its connection open between scrapes; a stalled one must not hold a socket for ever.
  server.requestTimeout = 30_000
  server.headersTimeout = 10_000

  async function answer (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0]
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: GET /metrics\n')
      return
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
      return
    }
    const { contentType, body } = await service.scrape()
    response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
    response.end(request.method === 'HEAD' ? undefined : body)
  }

  fastify.addHook('onReady', async () => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port, host }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as AddressInfo
    const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address
    fastify.metricsAddress = `http://${hostPart}:${address.port}`
    fastify.log.info({ address: `${fastify.metricsAddress}/metrics` }, 'metrics: listening')
  })
  fastify.addHook('onClose', async () => {
    if (!server.listening) return
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    // Idle keep-alive connections of the scraper would otherwise hold the close.
    server.closeAllConnections()
    await closed
    fastify.metricsAddress = null
  })
}

export default fp(metrics, { name: 'metrics', dependencies: ['config', 'database'] })
