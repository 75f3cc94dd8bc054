import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedDatabase } from '../../src/db/embedded.js'
import { json } from '../helpers/app.js'
import * as users from '../helpers/users.js'
import { canSwitchUser, intrudeAsOtherUser } from '../helpers/other-user.js'
import type { AttackCase } from './catalogue.js'

/**
 * Response headers and resource limits, and the embedded database's file
 * permissions.
 */

export const hardeningCases: AttackCase[] = [
  {
    id: 'HD-01',
    title: 'API responses, errors included, forbid MIME sniffing, loading anything and framing (nosniff, CSP, X-Frame-Options)',
    source: 'OWASP Secure Headers Project; ASVS 5.0 V3.4 (nosniff, CSP, frame-ancestors, Referrer-Policy); CWE-1021',
    async run (ctx, t) {
      const a = await ctx.signup('headers')
      const answers = [
        await ctx.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${a.access_token}` } }),
        await ctx.app.inject({ method: 'GET', url: '/users/me' }),
        await ctx.app.inject({ method: 'GET', url: '/no/such/route' }),
        await ctx.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: a.email, password: 'wrong password' } }),
      ]
      for (const response of answers) {
        const label = `${response.raw.req.url} ${response.statusCode}`
        t.equal(response.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
        t.equal(response.headers['x-frame-options'], 'DENY', `${label}: X-Frame-Options`)
        const csp = String(response.headers['content-security-policy'])
        t.match(csp, /default-src 'none'/, `${label}: nothing may load`)
        t.match(csp, /frame-ancestors 'none'/, `${label}: never framed`)
      }
    },
  },
  {
    id: 'HD-02',
    title: 'personal data, secrets and authorization decisions are never cached; only JWKS and discovery are public',
    source: 'ASVS 5.0 V14.3 (anti-caching of sensitive data); RFC 9111 §5.2.2.5; RFC 6749 §5.1',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('no-store'))
      const key = await ctx.createApiKey(admin.access_token, ['profile', 'introspect'])
      const bearer = { authorization: `Bearer ${admin.access_token}` }
      const requests = [
        { method: 'GET', url: '/auth/sessions', headers: bearer },
        { method: 'GET', url: '/users/me', headers: bearer },
        { method: 'GET', url: '/users/me', headers: { 'x-api-key': key.key } },
        { method: 'GET', url: '/api-keys', headers: bearer },
        { method: 'GET', url: '/admin/users', headers: bearer },
        { method: 'GET', url: '/admin/audit-events', headers: bearer },
        { method: 'POST', url: '/auth/introspect', headers: { 'x-api-key': key.key }, payload: { token: admin.access_token } },
        { method: 'GET', url: '/admin/users', headers: {} },
        { method: 'GET', url: '/users/me', headers: { authorization: 'Bearer not-a-token' } },
      ] as const
      for (const request of requests) {
        const response = await ctx.app.inject(request)
        t.equal(response.headers['cache-control'], 'no-store', `${request.method} ${request.url} ${response.statusCode}: no-store`)
      }
      for (const url of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
        const response = await ctx.app.inject({ url })
        t.match(response.headers['cache-control'], /^public, max-age=\d+$/, `${url}: public caching kept`)
      }
    },
  },
  {
    id: 'HD-03',
    title: 'clickjacking of Swagger UI: /docs cannot be framed and runs only its own scripts',
    source: 'OWASP Clickjacking Defense Cheat Sheet; ASVS 5.0 V3.4 (CSP, frame-ancestors)',
    async run (ctx, t) {
      const page = await ctx.app.inject({ url: '/docs' })
      t.equal(page.statusCode, 200)
      const csp = String(page.headers['content-security-policy'])
      t.match(csp, /frame-ancestors 'none'/)
      t.match(csp, /script-src 'self'(;|$)/, 'scripts from this origin only')
      t.notMatch(csp, /unsafe-inline|unsafe-eval/)
      t.equal(page.headers['x-frame-options'], 'DENY')
    },
  },
  {
    id: 'HD-04',
    title: 'API-key flood: a stolen access token cannot mint unbounded keys, even with concurrent requests at the cap',
    source: 'OWASP API Security Top 10 2023 API4 (Unrestricted Resource Consumption); CWE-770',
    async run (ctx, t) {
      const limit = ctx.config.apiKeyLimitPerUser
      const a = await ctx.signup('key-flood')
      await users.markAddressVerified(ctx.app, a.access_token)
      const rows = Array.from({ length: limit - 1 }, (_, i) => ({
        userId: a.id,
        name: `flood ${i}`,
        prefix: 'tak_flood000',
        keyHash: randomBytes(32),
        scopes: ['profile'],
      }))
      await ctx.app.db.apiKey.createMany({ data: rows })
      const flood = await Promise.all(
        Array.from({ length: 20 }, () =>
          ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${a.access_token}` }, payload: { name: 'flood', scopes: ['profile'] } })
        )
      )
      const statuses = flood.map((response) => response.statusCode)
      t.equal(statuses.filter((status) => status === 201).length, 1, `one key past limit - 1 (${limit}), the rest refused`)
      t.ok(flood.every((response) => response.statusCode === 201 || json(response).code === 'api_key_limit'), '409 api_key_limit')
      t.equal(await ctx.app.db.apiKey.count({ where: { userId: a.id, revokedAt: null } }), limit, 'the database holds the limit, no more')
    },
  },
  {
    id: 'DB-01',
    // Not an HTTP attack: it starts its own embedded database in a fresh
    // DATA_DIR, as `npm start` does with no DATABASE_URL, whatever database
    // the catalogue's service runs on.
    title: 'another local user cannot reach the embedded database: no TCP port, an owner-only socket, lock and folder',
    source: 'ASVS 5.0 V13.2.1, V13.2.2 (backend connections authenticated, least privilege); CWE-284; CWE-732',
    async run (_ctx, t) {
      const dataDir = await mkdtemp(join(tmpdir(), 'attack-db-'))
      const db = await startEmbeddedDatabase({ dataDir })
      try {
        const lockPath = join(dataDir, 'pgdata.lock')
        const socketPath = join(dataDir, '.s.PGSQL.5432')
        t.notMatch(db.url, /@[^/?]*:\d+/, 'the database listens on no TCP port')
        t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'DATA_DIR is 0700')
        t.equal((await stat(lockPath)).mode & 0o777, 0o600, 'the lock file is 0600')
        t.equal((await stat(socketPath)).mode & 0o077, 0, 'the socket is owner-only')
        if (canSwitchUser) {
          // pglite-socket accepts any user name and password: permissions are the only gate.
          t.same(await intrudeAsOtherUser(lockPath, dataDir), { readLock: 'EACCES', connect: 'EACCES' }, 'user nobody can neither read the lock nor connect')
        } else {
          t.comment('not root: the intrusion as another user is not attempted; the modes above are what refuses it')
        }
      } finally {
        await db.stop()
        await rm(dataDir, { recursive: true, force: true })
      }
    },
  },
]
