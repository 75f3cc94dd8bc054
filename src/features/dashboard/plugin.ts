import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { ApiError } from '../../errors.js'
import { PROJECT_ROOT } from '../../paths.js'
import { pageSecurityHeaders, securityHeadersHook } from '../../http/external/helmet.js'

/** Where `npm run build:dashboard` (part of `npm run build`, so of `npm ci`) puts the bundled SPA. */
export const DASHBOARD_DIR = join(PROJECT_ROOT, 'dist', 'dashboard')

/**
 * The strict Content-Security-Policy of the dashboard: its own bundled
 * scripts and styles only (no inline script or style, nothing from a CDN),
 * API calls to this origin only, never framed.
 */
export const DASHBOARD_CSP = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'connect-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'object-src': ["'none'"],
}

const DASHBOARD_HEADERS = pageSecurityHeaders(DASHBOARD_CSP)

/**
 * The admin dashboard (DESIGN §3.8) at /dashboard/: static files served by
 * @fastify/static with helmet's whole set for a page. An encapsulated plugin,
 * so its headers and CSP replace the API's (http/external/helmet.ts) on
 * the dashboard's routes only. Its files are public: they keep their own Cache-Control.
 */
export default async function dashboard (fastify: FastifyInstance, options: { root?: string } = {}) {
  const root = options.root ?? DASHBOARD_DIR
  // After the API's headers (a parent's hook runs first), so these replace them.
  fastify.addHook('onRequest', securityHeadersHook(DASHBOARD_HEADERS))

  fastify.addHook('onRoute', (route) => {
    if (route.url.startsWith('/dashboard/')) route.config = { ...route.config, publicCache: true }
  })

  fastify.get('/dashboard', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/dashboard/', 301))

  if (!existsSync(join(root, 'index.html'))) {
    fastify.log.warn({ root }, 'the dashboard is not built (npm run build:dashboard); /dashboard/ answers 503')
    fastify.get('/dashboard/*', { schema: { hide: true } }, async () => {
      throw new ApiError('dashboard_not_built', 'the dashboard is not built; run npm run build:dashboard')
    })
    return
  }

  await fastify.register(fastifyStatic, {
    root,
    prefix: '/dashboard/',
    decorateReply: false,
    index: ['index.html'],
    // Only what the build wrote: no directory listings, no dotfiles.
    list: false,
    dotfiles: 'deny',
    cacheControl: false,
    setHeaders (reply, path) {
      // Hashed asset names never change content; index.html must be revalidated to pick up a new build.
      reply.header('cache-control', path.includes(join('dashboard', 'assets')) ? 'public, max-age=31536000, immutable' : 'no-cache')
    },
  })
}
