import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * The Content-Security-Policy of API responses. They are JSON: a browser
 * that renders one anyway (a URL opened directly, a sniffing mistake) may
 * load, run or frame nothing from it. `base-uri` and `form-action`, which do
 * not fall back to `default-src`, govern HTML elements a JSON body cannot
 * hold; the HTML pages' policies (dashboard, Swagger UI) set them.
 */
export const API_CSP = {
  'default-src': ["'none'"],
  'frame-ancestors': ["'none'"],
}

/**
 * The headers helmet's middleware sets for `options`, computed once. With
 * no CSP directive that is a function of the request (nonces) they are the
 * same for every response, so each response gets a copy rather than a run of
 * the middleware: @fastify/helmet builds the middleware again on every
 * request, which measured here halved a hello-world route's throughput
 * (0.51 of the bare route, against 0.87 with the copied headers).
 */
export function securityHeaders (options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader (name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = String(value)
    },
    removeHeader (name: string) {
      delete headers[name.toLowerCase()]
    },
  }
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error
  })
  return Object.freeze(headers)
}

/**
 * The options of helmet's whole set for a page a browser renders, with the
 * page's own CSP: never framed, no referrer.
 */
function documentHeaderOptions (directives: Record<string, string[]>) {
  return {
    contentSecurityPolicy: { useDefaults: false, directives },
    frameguard: { action: 'deny' as const },
    referrerPolicy: { policy: 'no-referrer' as const },
  } satisfies HelmetOptions
}

/** Helmet's whole set for an HTML page (the dashboard, Swagger UI) with its own CSP, computed once. */
export function pageSecurityHeaders (directives: Record<string, string[]>): Readonly<Record<string, string>> {
  return securityHeaders(documentHeaderOptions(directives))
}

/**
 * The onRequest hook that copies `headers` onto each reply of its scope. In
 * an encapsulated scope it runs after its parent's, so a page's set replaces
 * the API's there.
 */
export function securityHeadersHook (headers: Readonly<Record<string, string>>): onRequestHookHandler {
  return function securityHeadersHook (_request, reply, done) {
    reply.headers(headers)
    done()
  }
}

/**
 * Helmet's set fitted to a JSON API: the headers that act on a response
 * that is not a page. Left to the HTML pages are those that act only on a
 * document a browser renders (ASVS 5.0 V3.4.8 asks COOP of those;
 * Origin-Agent-Cluster, X-DNS-Prefetch-Control) and those for browsers and
 * plug-ins long gone (X-Download-Options: IE 8; X-Permitted-Cross-Domain-
 * Policies: Flash and Acrobat; X-XSS-Protection: 0, which only switches off
 * an auditor no current browser has). What stays is the OWASP REST Security
 * Cheat Sheet's set for API responses (CSP, HSTS, nosniff, X-Frame-Options;
 * Cache-Control is cache-control.ts's) with Referrer-Policy and
 * Cross-Origin-Resource-Policy, which keeps other sites from loading an
 * answer as a no-cors resource. Each header is written and validated by Node
 * and parsed by the client on every answer: the six cost about a tenth of a
 * small route's throughput here (bench/README.md, figure 1).
 */
export const API_SECURITY_HEADERS = securityHeaders({
  ...documentHeaderOptions(API_CSP),
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
})

/**
 * Helmet's security headers fitted to an API on every response of the
 * service (OWASP Secure Headers, ASVS V3.4): `X-Content-Type-Options:
 * nosniff`, never framed (`frame-ancestors 'none'`, `X-Frame-Options: DENY`),
 * no referrer, HSTS, Cross-Origin-Resource-Policy. Set in the first onRequest
 * hook, so responses of hooks that answer early carry them too. The HTML
 * pages, Swagger UI (/docs, swagger.ts) and the dashboard
 * (features/dashboard/plugin.ts), replace them with helmet's whole set and their
 * own CSP; caching is the cache-control plugin's.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.addHook('onRequest', securityHeadersHook(API_SECURITY_HEADERS))
  },
  { name: 'helmet' }
)
