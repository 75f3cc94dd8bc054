import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's successful responses are public and set their own
     * Cache-Control (the JWKS, discovery metadata, the dashboard's files).
     */
    publicCache?: boolean
  }
}

/**
 * `Cache-Control: no-store` on every response but the successful ones of
 * routes declared public (ASVS V14.3). A default rather than a list of
 * private routes: a new route carrying personal data, a secret or an
 * authorization decision (a 401 or 403 included) is covered without anyone
 * remembering to. Runs in onSend, after the handler, so it also overrides a
 * public route's header when that route answers an error.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    // A callback hook: an async one costs a promise and a microtask turn per response.
    fastify.addHook('onSend', function noStoreHook (request, reply, payload, done) {
      if (request.routeOptions.config?.publicCache !== true || reply.statusCode >= 400) reply.header('cache-control', 'no-store')
      done(null, payload)
    })
  },
  { name: 'cache-control' }
)
