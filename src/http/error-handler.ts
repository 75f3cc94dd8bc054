import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, DomainError, OAUTH_ERROR_ALIASES, oauthErrorDescription, type ErrorCode } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers errors in RFC 6749 form ({error, error_description}). */
    oauth?: boolean
  }
}

/**
 * Every error answer (DESIGN §4): the one JSON shape {statusCode, error,
 * code, message}, or RFC 6749 §5.2 {error, error_description} with
 * Cache-Control: no-store on the OAuth endpoints. Every code is one of the
 * catalogue's (errors.ts ERROR_STATUS), with its status; a database outage
 * is 503; anything unexpected is a logged 500 that says nothing about its
 * cause.
 */
async function errorHandler (fastify: FastifyInstance) {
  fastify.setNotFoundHandler((request, reply) => {
    send(request, reply, new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`))
  })

  fastify.setErrorHandler((error: FastifyError | ApiError | DomainError, request, reply) => {
    if (error instanceof ApiError) return send(request, reply, error)
    if (error instanceof DomainError) return send(request, reply, ApiError.from(error))
    if (isDatabaseUnavailable(error)) {
      request.log.error({ err: error }, 'database unavailable')
      return send(request, reply, new ApiError('database_unavailable', 'the database is unavailable; retry shortly', { 'retry-after': '2' }))
    }
    const status = error.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return send(request, reply, new ApiError('internal_error', 'internal server error'))
    }
    return send(request, reply, fastifyClientError(error, request))
  })
}

/**
 * Fastify's own client errors (schema validation, the body parsers, the
 * router) as codes of the catalogue, never Fastify's internal ones
 * (fst_err_ctp_invalid_json_body): clients and the SDK match on them.
 */
function fastifyClientError (error: FastifyError, request: FastifyRequest): ApiError {
  if (error.validation) {
    return new ApiError('validation_failed', `${error.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params|headers)/, '')}`)
  }
  if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new ApiError('invalid_json', `the body is not valid JSON (${error.message})`)
  }
  // Fastify's body-too-large (FST_ERR_CTP_BODY_TOO_LARGE) and media-type (FST_ERR_CTP_INVALID_MEDIA_TYPE) errors carry 413 and 415.
  switch (error.statusCode) {
    case 404: return new ApiError('not_found', error.message)
    case 413: return new ApiError('body_too_large', 'the body is larger than this route accepts')
    case 415: return new ApiError('unsupported_media_type', `send the body as ${acceptedMediaTypes(request)}`)
    case 429: return new ApiError('rate_limited', error.message)
    default: return new ApiError('bad_request', error.message)
  }
}

/** The bodies a route parses: JSON everywhere, and form bodies on the OAuth endpoints (features/tokens/routes.ts registers the parser there only). */
function acceptedMediaTypes (request: FastifyRequest): string {
  return request.routeOptions.config?.oauth === true ? 'application/json or application/x-www-form-urlencoded' : 'application/json'
}

/** Answers `error` in the route's shape; on the OAuth endpoints, a code outside RFC 6749 and its extensions as the RFC code covering it. */
function send (request: FastifyRequest, reply: FastifyReply, error: ApiError) {
  reply.code(error.statusCode).headers(error.headers)
  if (request.routeOptions.config?.oauth === true) {
    return reply.header('cache-control', 'no-store').send({ ...error.fields, error: (OAUTH_ERROR_ALIASES as Partial<Record<ErrorCode, string>>)[error.code] ?? error.code, error_description: oauthErrorDescription(error.message) })
  }
  return reply.send({ ...error.fields, statusCode: error.statusCode, error: STATUS_CODES[error.statusCode] ?? 'Error', code: error.code, message: error.message })
}

/**
 * Connection-level failures of Postgres, whatever layer reports them: pg's
 * own errors (`code`), and Prisma's P2039 (model queries) and P2010 (raw
 * queries), which carry @prisma/adapter-pg's mapped error in
 * meta.driverAdapterError.cause: `{ kind, originalCode, code? }`.
 */
export function isDatabaseUnavailable (error: unknown): boolean {
  const pending: unknown[] = [error]
  for (let seen = 0; pending.length > 0 && seen < 10; seen++) {
    const e = pending.pop()
    if (!e || typeof e !== 'object') continue
    const { code, originalCode, kind, name, message, cause, meta } = e as {
      code?: unknown
      originalCode?: unknown
      kind?: unknown
      name?: unknown
      message?: unknown
      cause?: unknown
      meta?: { driverAdapterError?: unknown }
    }
    if (typeof code === 'string' && DB_UNAVAILABLE_CODES.has(code)) return true
    if (typeof originalCode === 'string' && DB_UNAVAILABLE_CODES.has(originalCode)) return true
    if (typeof kind === 'string' && DB_UNAVAILABLE_KINDS.has(kind)) return true
    if (name === 'PrismaClientInitializationError') return true
    if (typeof message === 'string' && DB_UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true
    pending.push(cause, meta?.driverAdapterError)
  }
  return false
}

/**
 * SQLSTATEs that mean "the database cannot serve this now; the same request
 * will succeed shortly": a 503 with Retry-After, not a 500.
 * - Class 08, connection exception, all of it. 08P01 (protocol_violation)
 *   too: PgBouncer reports its own failures (a server connection lost,
 *   query_wait_timeout, login to the server failing) as 08P01 by default;
 *   a real protocol bug still gets logged at error level.
 * - 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now
 *   (starting up, shutting down, in recovery): a restart or a failover.
 * - 53300 too_many_connections: adapter-pg maps it to TooManyConnections
 *   (below); the raw pool reports the bare code.
 * Not here: 57P04 database_dropped (permanent), 57014 query_canceled (our
 * own timeout or a cancel, not an outage).
 */
export const DATABASE_UNAVAILABLE_SQLSTATES = [
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
  '08P01',
  '57P01',
  '57P02',
  '57P03',
  '53300',
] as const

const DB_UNAVAILABLE_CODES = new Set<string>([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'P1001',
  'P1002',
  'P1017',
  ...DATABASE_UNAVAILABLE_SQLSTATES,
])
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

export default fp(errorHandler, { name: 'error-handler' })
