import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, DomainError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers errors in RFC 6749 form ({error, error_description}). */
    oauth?: boolean
  }
}

/**
 * Every error answer (DESIGN §4): the one JSON shape {statusCode, error,
 * code, message}, or RFC 6749 §5.2 {error, error_description} with
 * Cache-Control: no-store on the OAuth endpoints. Domain errors get their
 * status from ERROR_STATUS; a database outage is 503; anything unexpected is
 * a logged 500 that says nothing about its cause.
 */
async function errorHandler (fastify: FastifyInstance) {
  fastify.setNotFoundHandler((request, reply) => {
    send(request, reply, new ApiError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`))
  })

  fastify.setErrorHandler((error: FastifyError | ApiError | DomainError, request, reply) => {
    if (error instanceof ApiError) return send(request, reply, error)
    if (error instanceof DomainError) return send(request, reply, ApiError.from(error))
    if (isDatabaseUnavailable(error)) {
      request.log.error({ err: error }, 'database unavailable')
      const unavailable = new ApiError(503, 'database_unavailable', 'the database is unavailable; retry shortly', { 'retry-after': '2' })
      return send(request, reply, unavailable, 'temporarily_unavailable')
    }
    const status = error.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return send(request, reply, new ApiError(500, 'internal_error', 'internal server error'), 'server_error')
    }
    // Fastify's own client errors: validation, 413 too large, 415 unsupported media type, 429 from the limiter.
    if (error.validation) {
      const message = `${error.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params|headers)/, '')}`
      return send(request, reply, new ApiError(status, 'validation_failed', message), 'invalid_request')
    }
    const oauthCode = status === 429 ? 'too_many_requests' : 'invalid_request'
    return send(request, reply, new ApiError(status, (error.code ?? 'bad_request').toLowerCase(), error.message), oauthCode)
  })
}

/**
 * Answers `error` in the route's shape. `oauthCode` names the RFC 6749 code
 * of errors whose own code is not one (Fastify's), on the OAuth endpoints.
 */
function send (request: FastifyRequest, reply: FastifyReply, error: ApiError, oauthCode?: string) {
  reply.code(error.statusCode).headers(error.headers)
  if (request.routeOptions.config?.oauth === true) {
    return reply.header('cache-control', 'no-store').send({ ...error.fields, error: oauthCode ?? error.code, error_description: error.message })
  }
  return reply.send({ ...error.fields, statusCode: error.statusCode, error: STATUS_CODES[error.statusCode] ?? 'Error', code: error.code, message: error.message })
}

/** Connection-level failures of Postgres, whatever layer reports them. */
function isDatabaseUnavailable (error: unknown): boolean {
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

export default fp(errorHandler, { name: 'error-handler' })
