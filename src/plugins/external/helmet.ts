import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The Content-Security-Policy of API responses. They are JSON: a browser
 * that renders one anyway (a URL opened directly, a sniffing mistake) may
 * load, run or frame nothing from it.
 */
export const API_CSP = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
}

/**
 * Helmet's security headers on every response of the service (OWASP Secure
 * Headers, ASVS V3.4): `X-Content-Type-Options: nosniff`, never framed
 * (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), no referrer, HSTS and
 * the cross-origin isolation headers. Swagger UI (/docs, swagger.ts) and the
 * dashboard (plugins/app/dashboard.ts) serve HTML and replace the CSP with
 * their own; caching is the cache-control plugin's.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    await fastify.register(helmet, {
      global: true,
      contentSecurityPolicy: { useDefaults: false, directives: API_CSP },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'no-referrer' },
    })
  },
  { name: 'helmet' },
)
