import { randomUUID } from 'node:crypto'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify'
import pino from 'pino'
import type { Config } from './config.js'
import database from './db/plugin.js'
import { adminApi } from './features/admin/routes.js'
import { FEATURES } from './features/index.js'
import attemptLimits from './http/attempt-limits.js'
import authentication from './http/authentication.js'
import cacheControl from './http/cache-control.js'
import configPlugin from './http/config-plugin.js'
import { ErrorResponse, OAuthErrorResponse } from './http/error-schemas.js'
import errorHandler from './http/error-handler.js'
import cookie from './http/external/cookie.js'
import cors from './http/external/cors.js'
import helmet from './http/external/helmet.js'
import rateLimit from './http/external/rate-limit.js'
import swagger from './http/external/swagger.js'
import underPressure from './http/external/under-pressure.js'
import { installInputRules, withInputRules } from './shared/input-formats.js'

/** Accepted as a request id from a proxy only when it cannot inject anything into logs. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

const { chindingsSym } = pino.symbols

/**
 * The logger of each request: the service's logger with the request id
 * appended to its serialized bindings (pino.symbols, pino's documented hook
 * for this), as a plain object inheriting from it. pino's child() would run
 * the binding through the redaction of the logger's paths (whose wildcards
 * match any key, for a string no path can match) and build the child's
 * formatters anew on every request (about half a microsecond here,
 * bench/README.md, figure 1). The output is the same: pino's log methods read
 * the bindings, level, redaction and formatters through `this`, and setting
 * the object's level gives it its own methods. A route's own log level or
 * serializers (options) take pino's usual path.
 */
function requestLogger (logger: FastifyBaseLogger, bindings: Record<string, unknown>, options: object): FastifyBaseLogger {
  if (Object.keys(options).length > 0) return logger.child(bindings, options)
  let serialized = ''
  for (const key in bindings) {
    const value = bindings[key]
    if (typeof value !== 'string') return logger.child(bindings, options)
    serialized += `,${JSON.stringify(key)}:${JSON.stringify(value)}`
  }
  const child = Object.create(logger) as FastifyBaseLogger & Record<symbol, string>
  child[chindingsSym] = (logger as unknown as Record<symbol, string>)[chindingsSym] + serialized
  return child
}

/** Options for the Fastify instance the app is registered on (server.ts and tests). */
export function serverOptions (config: Pick<Config, 'logLevel' | 'trustProxy'>): FastifyServerOptions {
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
          // Second factors: codes, the enrolment's secret, the second step's token.
          '*.mfa_token',
          '*.otp',
          '*.recovery_code',
          '*.recoveryCodes',
          '*.secret',
          '*.otpauth_uri',
        ],
        censor: '[redacted]',
      },
    },
    childLoggerFactory: requestLogger,
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
export default async function app (fastify: FastifyInstance, options: AppOptions) {
  // OpenTelemetry first, so that its spans cover every hook and route after it;
  // imported only when a collector is configured, so that otherwise none of its modules loads.
  const { otlpEndpoint } = options.config
  if (otlpEndpoint) await fastify.register((await import('./features/metrics/tracing.js')).default, { endpoint: otlpEndpoint })
  installValidators(fastify)
  // Closing: Fastify answers new requests 503 with Connection: close, but a
  // response in flight when the close began would leave its keep-alive
  // connection open, and close would wait for the client to drop it.
  let closing = false
  fastify.addHook('preClose', async () => {
    closing = true
  })
  // A callback hook: an async one costs a promise and a microtask turn per response.
  fastify.addHook('onSend', function responseHeadersHook (request, reply, payload, done) {
    reply.header('x-request-id', request.id)
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })

  await fastify.register(errorHandler)
  await fastify.register(configPlugin, { config: options.config, ...(options.now ? { now: options.now } : {}) })
  // Response headers first, so that every response gets them, those of
  // hooks that answer early (load shedding, rate limits, CORS preflights) too.
  await fastify.register(helmet)
  await fastify.register(cacheControl)
  // External plugins, one per file.
  await fastify.register(underPressure)
  await fastify.register(cors)
  await fastify.register(cookie)
  await fastify.register(rateLimit)
  await fastify.register(swagger, { schemas: [ErrorResponse, OAuthErrorResponse, ...FEATURES.flatMap((feature) => feature.schemas ?? [])] })
  await fastify.register(database)
  // Each capability's services (features/index.ts), then what every route uses: attempt budgets and authentication.
  for (const feature of FEATURES) for (const plugin of feature.plugins ?? []) await fastify.register(plugin)
  await fastify.register(attemptLimits)
  await fastify.register(authentication)
  // Each capability's routes at their prefixes; the admin API with every capability's admin routes inside it.
  for (const feature of FEATURES) for (const { prefix, plugin } of feature.routes ?? []) await fastify.register(plugin, { prefix })
  await fastify.register(adminApi(FEATURES.flatMap((feature) => feature.adminRoutes ?? [])), { prefix: '/admin' })
}

/**
 * Bodies are validated strictly (no type coercion, unknown fields refused
 * where the schema says so); querystrings and params are strings on the wire
 * and are coerced to the schema's types.
 */
function installValidators (fastify: FastifyInstance) {
  // Bodies are JSON (and form-encoded on the OAuth endpoints, registered there).
  // Fastify's default text/plain parser would let a cross-site `enctype=text/plain`
  // form reach handlers that take no body, such as the cookie-authenticated logout.
  fastify.removeContentTypeParser('text/plain')
  const common = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const
  // ajv-formats first, then this service's stricter uuid and date-time and its text keywords (shared/input-formats.ts).
  const strict = installInputRules(addFormats.default(new Ajv({ ...common, coerceTypes: false })))
  const coercing = installInputRules(addFormats.default(new Ajv({ ...common, coerceTypes: 'array' })))
  // Every string of every request refuses U+0000 unless its schema opts out: no route can forget it.
  fastify.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? strict : coercing).compile(withInputRules(schema as object))
  )
}
