import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import pg from 'pg'
// Another service imports this as 'token-auth/resource-server'; the example uses the source.
import resourceServer, { ResourceAuthError } from '../../../src/resource-server/index.js'
import type { LinksConfig } from './config.js'
import { migrateLinks } from './db.js'
import { LinkStore } from './links.js'
import { LinksError, linksRoutes } from './routes.js'

/**
 * The links service: a Fastify app on its own Postgres tables, its requests
 * authenticated by the auth service's resource-server plugin. Migrates its
 * tables before it is returned; does not listen (server.ts does).
 */
export async function buildLinksApp (config: LinksConfig): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'], censor: '[redacted]' },
    },
    bodyLimit: 16 * 1024,
    forceCloseConnections: 'idle',
    // Unknown body fields are refused, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.databasePoolMax,
    connectionTimeoutMillis: 3_000,
    query_timeout: 10_000,
  })
  pool.on('error', (error) => app.log.warn({ err: error }, 'idle database connection failed'))
  app.addHook('onClose', async () => {
    await pool.end()
  })
  try {
    const applied = await migrateLinks(pool)
    app.log.info({ applied }, 'links migrations up to date')
  } catch (error) {
    await pool.end()
    throw error
  }

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ statusCode: 404, error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })
  app.setErrorHandler((error: FastifyError | ResourceAuthError | LinksError, request, reply) => {
    if (error instanceof ResourceAuthError) {
      // RFC 6750: the status and WWW-Authenticate challenge the plugin chose.
      return reply.code(error.statusCode).headers(error.headers).send({ statusCode: error.statusCode, error: error.code, message: error.message })
    }
    if (error instanceof LinksError) {
      return reply.code(error.statusCode).send({ statusCode: error.statusCode, error: error.code, message: error.message })
    }
    const fastifyError = error as FastifyError
    const status = fastifyError.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(500).send({ statusCode: 500, error: 'internal_error', message: 'internal server error' })
    }
    const code = fastifyError.validation ? 'validation_failed' : (fastifyError.code ?? 'bad_request').toLowerCase()
    return reply.code(status).send({ statusCode: status, error: code, message: fastifyError.message })
  })

  await app.register(resourceServer, {
    issuer: config.issuer,
    audience: config.audience,
    realm: 'links',
    ...config.auth,
    introspection: { credential: config.introspectionKey, ...config.auth?.introspection },
    // The auth service's security events: a revoked session is refused within a second on every route, and
    // sensitive routes ask the issuer only while the stream is down.
    events: { credential: config.eventsKey ?? config.introspectionKey, ...config.auth?.events },
  })
  // The stream's state beside the process's: healthy, starting, or degraded (sensitive routes then introspect).
  app.get('/health', async () => ({ status: 'ok', securityEvents: app.resourceServer.events?.health().state ?? 'off' }))
  await app.register(linksRoutes(new LinkStore(pool), config.publicBaseUrl))
  return app
}
