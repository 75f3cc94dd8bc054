import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import dashboard, { DASHBOARD_DIR } from '../../src/features/dashboard/plugin.js'
import { buildTestApp } from '../helpers/app.js'

/**
 * How the dashboard is served, without a browser: the strict CSP and the
 * other helmet headers on its routes only, caching, the redirect to the
 * trailing slash, and a clear 503 when the bundle was not built.
 */

const built = existsSync(join(DASHBOARD_DIR, 'index.html'))

t.test('the built dashboard: strict CSP on its routes only, hashed assets cached for good', { skip: built ? false : 'the dashboard is not built (npm run build:dashboard)' }, async (t) => {
  const test = await buildTestApp()
  t.teardown(test.close)
  const { app } = test

  const index = await app.inject({ url: '/dashboard/' })
  t.equal(index.statusCode, 200)
  t.match(index.headers['content-type'], /text\/html/)
  const csp = String(index.headers['content-security-policy'])
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    t.ok(csp.split(';').includes(directive), directive)
  }
  t.notMatch(csp, /unsafe-inline|unsafe-eval|https?:/, 'no inline script, no other origin')
  t.equal(index.headers['x-content-type-options'], 'nosniff')
  t.equal(index.headers['cache-control'], 'no-cache')
  t.notMatch(index.body, /<script>|<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script in the page')
  t.notMatch(index.body, /https?:\/\//, 'nothing loaded from another origin')

  const script = /<script[^>]+src="([^"]+)"/.exec(index.body)?.[1]
  t.ok(script?.startsWith('/dashboard/assets/'), 'the bundle is served from /dashboard/assets/')
  const asset = await app.inject({ url: script! })
  t.equal(asset.statusCode, 200)
  t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable')

  const bare = await app.inject({ url: '/dashboard' })
  t.equal(bare.statusCode, 301)
  t.equal(bare.headers.location, '/dashboard/')

  t.equal((await app.inject({ url: '/dashboard/../package.json' })).statusCode, 404)
  t.equal((await app.inject({ url: '/dashboard/assets/' })).statusCode, 404, 'no directory listing')

  t.equal(index.headers['x-frame-options'], 'DENY', 'never framed, for browsers without frame-ancestors')
  const api = await app.inject({ url: '/health' })
  t.notMatch(String(api.headers['content-security-policy']), /script-src/, 'the API keeps its own CSP')
  t.match(String(api.headers['content-security-policy']), /default-src 'none'/)
})

t.test('a missing bundle answers 503 with the command that builds it', async (t) => {
  const empty = await mkdtemp(join(tmpdir(), 'no-dashboard-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  const app = Fastify()
  await app.register(dashboard, { root: empty })
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/dashboard/' })
  t.equal(response.statusCode, 503)
  t.match(response.body, /build:dashboard/)
})
