import { randomUUID } from 'node:crypto'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyError, FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'
import { ApiError, OAuthError } from './errors.js'
import accounts from './plugins/app/accounts.js'
import authentication from './plugins/app/authentication.js'
import configPlugin from './plugins/app/config.js'
import dashboard from './plugins/app/dashboard.js'
import database from './plugins/app/database.js'
import keys from './plugins/app/keys.js'
import revocation from './plugins/app/revocation.js'
import cookie from './plugins/external/cookie.js'
import cors from './plugins/external/cors.js'
import rateLimit from './plugins/external/rate-limit.js'
import swagger from './plugins/external/swagger.js'
import underPressure from './plugins/external/under-pressure.js'
import adminRoutes from './routes/admin/index.js'
import apiKeyRoutes from './routes/api-keys/index.js'
import authRoutes from './routes/auth/index.js'
import healthRoutes from './routes/health.js'
import usersRoutes from './routes/users/index.js'
import wellKnownRoutes from './routes/well-known/index.js'
import { installInputRules, withInputRules } from './schemas/formats.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers errors in RFC 6749 form ({error, error_description}). */
    oauth?: boolean
  }
}

/** Accepted as a request id from a proxy only when it cannot inject anything into logs. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Options for the Fastify instance the app is registered on (server.ts and tests). */
export function serverOptions(config: Pick<Config, 'logLevel' | 'trustProxy'>): FastifyServerOptions {
  return {
    logger: {
      level: config.logLevel,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-api-key"]',
          'res.headers["set-cookie"]',
          '*.password',
          '*.currentPassword',
          '*.newPassword',
          '*.refresh_token',
          '*.access_token',
          '*.token',
          '*.key',
        ],
        censor: '[redacted]',
      },
    },
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    trustProxy: config.trustProxy,
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    // A fresh embedded database takes several seconds to initialise.
    pluginTimeout: 60_000,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
  }
}

export interface AppOptions {
  config: Config
  /** Injected clock for tests. */
  now?: () => number
}

/** The whole service as a plugin, built from a validated config. */
export default async function app(fastify: FastifyInstance, options: AppOptions) {
  installValidators(fastify)
  installErrorHandlers(fastify)
  fastify.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  await fastify.register(configPlugin, { config: options.config, ...(options.now ? { now: options.now } : {}) })
  // External plugins, one per file.
  await fastify.register(underPressure)
  await fastify.register(cors)
  await fastify.register(cookie)
  await fastify.register(rateLimit)
  await fastify.register(swagger)
  // The app's own cross-cutting pieces.
  await fastify.register(database)
  await fastify.register(keys)
  await fastify.register(revocation)
  await fastify.register(accounts)
  await fastify.register(authentication)
  // Routes, grouped by prefix.
  await fastify.register(healthRoutes)
  await fastify.register(wellKnownRoutes, { prefix: '/.well-known' })
  await fastify.register(authRoutes, { prefix: '/auth' })
  await fastify.register(usersRoutes, { prefix: '/users' })
  await fastify.register(apiKeyRoutes, { prefix: '/api-keys' })
  await fastify.register(adminRoutes, { prefix: '/admin' })
  await fastify.register(dashboard)
}

/**
 * Bodies are validated strictly (no type coercion, unknown fields refused
 * where the schema says so); querystrings and params are strings on the wire
 * and are coerced to the schema's types.
 */
function installValidators(fastify: FastifyInstance) {
  // Bodies are JSON (and form-encoded on the OAuth endpoints, registered there).
  // Fastify's default text/plain parser would let a cross-site `enctype=text/plain`
  // form reach handlers that take no body, such as the cookie-authenticated logout.
  fastify.removeContentTypeParser('text/plain')
  const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const
  // ajv-formats first, then this service's stricter uuid and date-time and its text keywords (schemas/formats.ts).
  const strict = installInputRules(addFormats.default(new Ajv.default({ ...common, coerceTypes: false })))
  const coercing = installInputRules(addFormats.default(new Ajv.default({ ...common, coerceTypes: 'array' })))
  // Every string of every request refuses U+0000 unless its schema opts out: no route can forget it.
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(withInputRules(schema as object)),
  )
}

function installErrorHandlers(fastify: FastifyInstance) {
  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })

  fastify.setErrorHandler((error: FastifyError | ApiError | OAuthError, request, reply) => {
    const oauth = request.routeOptions.config?.oauth === true
    if (error instanceof OAuthError && oauth) {
      return reply.code(error.statusCode).headers({ 'cache-control': 'no-store', ...error.headers }).send({
        error: error.error,
        error_description: error.description,
      })
    }
    if (error instanceof OAuthError) {
      // Shared helpers (resolveClient) throw RFC 6749 errors on other routes too (sign-up): answer in
      // the route's own error shape, or its response schema fails to serialise them (a 500).
      return reply.code(error.statusCode).headers(error.headers).send(errorBody(error.statusCode, error.error, error.description))
    }
    if (error instanceof ApiError && oauth) {
      return reply.code(error.statusCode).headers({ 'cache-control': 'no-store', ...error.headers }).send({
        error: error.code,
        error_description: error.message,
      })
    }
    if (error instanceof ApiError) {
      return reply.code(error.statusCode).headers(error.headers).send(errorBody(error.statusCode, error.code, error.message))
    }
    const fastifyError = error as FastifyError
    if (isDatabaseUnavailable(error)) {
      request.log.error({ err: error }, 'database unavailable')
      return reply.code(503).header('retry-after', '2').send(errorBody(503, 'database_unavailable', 'the database is unavailable; retry shortly'))
    }
    const status = fastifyError.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(500).send(errorBody(500, 'internal_error', 'internal server error'))
    }
    const code = fastifyError.validation ? 'validation_failed' : (fastifyError.code ?? 'bad_request').toLowerCase()
    const message = fastifyError.validation ? `${fastifyError.validationContext ?? 'request'}${fastifyError.message.replace(/^(body|querystring|params|headers)/, '')}` : fastifyError.message
    if (oauth) {
      // Client errors keep their status (413 too large, 415 unsupported media type, 429) in RFC 6749 shape.
      return reply.code(status).header('cache-control', 'no-store').send({
        error: status === 429 ? 'too_many_requests' : 'invalid_request',
        error_description: message,
      })
    }
    return reply.code(status).send(errorBody(status, code, message))
  })
}

function errorBody(statusCode: number, code: string, message: string) {
  return { statusCode, error: REASONS[statusCode] ?? 'Error', code, message }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** Connection-level failures of Postgres, whatever layer reports them. */
function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown }
    if (typeof code === 'string' && DB_UNAVAILABLE_CODES.has(code)) return true
    // Prisma reports driver-adapter failures (e.g. P2010 from $queryRaw) with the adapter's mapped kind in meta.
    const kind = (e as { meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } }).meta?.driverAdapterError?.cause?.kind
    if (typeof kind === 'string' && DB_UNAVAILABLE_KINDS.has(kind)) return true
    if (name === 'PrismaClientInitializationError') return true
    if (typeof message === 'string' && DB_UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true
  }
  return false
}

const DB_UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'P1001', 'P1002', 'P1017', '57P01', '57P03', '08006', '08001', '08003'])
/** @prisma/adapter-pg's mapped error kinds that mean the database cannot be reached now. */
const DB_UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections'])
const DB_UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'ECONNREFUSED',
  "Can't reach database server",
  'terminating connection',
  'Server has closed the connection',
]
