import { assertInvalidToken } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { decodePart } from './context.js'

/**
 * API keys and privilege: revoked, out-of-scope and forged keys, escalation
 * to the admin API, IDOR, introspection.
 */

export const privilegeCases: AttackCase[] = [
  {
    id: 'AK-01',
    title: 'a revoked API key is refused at once (Bearer and X-API-Key)',
    source: 'RFC 7009 §2; RFC 6750 §5.2; ASVS 5.0 V7.4.1',
    async run (ctx, t) {
      const a = await ctx.signup('key-revoked')
      const key = await ctx.createApiKey(a.access_token)
      t.equal((await ctx.me(`Bearer ${key.key}`)).statusCode, 200, 'works before')
      const del = await ctx.app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: { authorization: `Bearer ${a.access_token}` } })
      t.equal(del.statusCode, 204)
      assertInvalidToken(t, await ctx.me(`Bearer ${key.key}`), 'Bearer')
      assertInvalidToken(t, await ctx.me(undefined, { 'x-api-key': key.key }), 'X-API-Key')
      const other = await ctx.createApiKey(a.access_token)
      await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: other.key } })
      assertInvalidToken(t, await ctx.me(`Bearer ${other.key}`), 'revoked through RFC 7009')
    },
  },
  {
    id: 'AK-02',
    title: 'an API key outside its scopes gets 403 insufficient_scope; a key cannot mint keys',
    source: 'RFC 6750 §3.1 (insufficient_scope), §5.3 (issue scoped bearer tokens)',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('key-scope'))
      const key = await ctx.createApiKey(admin.access_token, ['introspect'])
      const me = await ctx.me(`Bearer ${key.key}`)
      t.equal(me.statusCode, 403)
      t.match(String(me.headers['www-authenticate']), /insufficient_scope/)
      const mint = await ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${key.key}` }, payload: { name: 'x', scopes: ['profile'] } })
      t.equal(mint.statusCode, 401, 'a key cannot create keys')
      const adminApi = await ctx.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${key.key}` } })
      t.equal(adminApi.statusCode, 401, "an admin's key does not open the admin API")
    },
  },
  {
    id: 'AK-03',
    title: 'a mistyped or forged API key (bad checksum, wrong prefix) is refused',
    source: 'RFC 6749 §10.10; ASVS 5.0 V9.1.1',
    async run (ctx, t) {
      const a = await ctx.signup('key-forged')
      const key = await ctx.createApiKey(a.access_token)
      const chars = [...key.key]
      chars[10] = chars[10] === 'A' ? 'B' : 'A'
      for (const forged of [chars.join(''), `tak_${'0'.repeat(49)}`, key.key.replace('tak_', 'tak-'), `${key.key}x`, 'tak_']) {
        const response = await ctx.me(`Bearer ${forged}`)
        t.equal(response.statusCode, 401, `${forged.slice(0, 14)}…: 401`)
      }
    },
  },
  {
    id: 'PR-01',
    title: 'privilege escalation: a user cannot reach the admin API or grant itself the introspect scope',
    source: 'ASVS 5.0 V8.2.1 (function-level authorisation); CWE-269; RFC 6750 §5.3',
    async run (ctx, t) {
      const a = await ctx.signup('escalate')
      for (const [method, url] of [['GET', '/admin/users'], ['GET', `/admin/users/${a.id}`], ['GET', '/admin/audit-events']] as const) {
        const response = await ctx.app.inject({ method, url, headers: { authorization: `Bearer ${a.access_token}` } })
        t.equal(response.statusCode, 403, `${method} ${url}: 403`)
      }
      const patch = await ctx.app.inject({ method: 'PATCH', url: `/admin/users/${a.id}`, headers: { authorization: `Bearer ${a.access_token}` }, payload: { role: 'admin' } })
      t.equal(patch.statusCode, 403, 'cannot promote itself')
      const key = await ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${a.access_token}` }, payload: { name: 'x', scopes: ['introspect'] } })
      t.equal(key.statusCode, 400, 'cannot grant itself introspect')
    },
  },
  {
    id: 'PR-02',
    title: "IDOR: a user cannot revoke or see another user's sessions or API keys",
    source: 'ASVS 5.0 V8.2.2 (object-level authorisation); CWE-639',
    async run (ctx, t) {
      const attacker = await ctx.signup('idor-attacker')
      const target = await ctx.signup('idor-target')
      const targetSid = decodePart(target.access_token, 1).sid as string
      const targetKey = await ctx.createApiKey(target.access_token)
      const del = await ctx.app.inject({ method: 'DELETE', url: `/auth/sessions/${targetSid}`, headers: { authorization: `Bearer ${attacker.access_token}` } })
      t.equal(del.statusCode, 404)
      const delKey = await ctx.app.inject({ method: 'DELETE', url: `/api-keys/${targetKey.id}`, headers: { authorization: `Bearer ${attacker.access_token}` } })
      t.equal(delKey.statusCode, 404)
      const list = await ctx.app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${attacker.access_token}` } })
      t.notOk(list.body.includes(targetSid), "the target's session is not listed")
      t.notOk(await ctx.sessionRevoked(target.access_token), 'target session alive')
      t.equal((await ctx.me(`Bearer ${targetKey.key}`)).statusCode, 200, 'target key alive')
    },
  },
  {
    id: 'PR-03',
    title: "a demoted admin's older access tokens no longer open the admin API",
    source: 'ASVS 5.0 V7.4.1; RFC 9068 §4 (authorization decisions); DESIGN §3.5 rule 7',
    async run (ctx, t) {
      const admin = await ctx.signup('demoted')
      const tokens = await ctx.makeAdmin(admin)
      const boss = await ctx.makeAdmin(await ctx.signup('boss'))
      t.equal((await ctx.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode, 200)
      const demote = await ctx.app.inject({ method: 'PATCH', url: `/admin/users/${admin.id}`, headers: { authorization: `Bearer ${boss.access_token}` }, payload: { role: 'user' } })
      t.equal(demote.statusCode, 200)
      const after = await ctx.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${tokens.access_token}` } })
      t.equal(after.statusCode, 401, 'the admin-role token is refused')
    },
  },
  {
    id: 'PR-04',
    title: 'introspection needs an admin-held introspect key; a user token or refresh token cannot introspect',
    source: 'RFC 7662 §2.1, §4; ASVS 5.0 V9.2.2',
    async run (ctx, t) {
      const a = await ctx.signup('introspect-caller')
      for (const authorization of [`Bearer ${a.access_token}`, `Bearer ${a.refresh_token}`, undefined]) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/introspect',
          headers: authorization ? { authorization } : {},
          payload: { token: ctx.victim.access_token },
        })
        t.ok([401, 403].includes(response.statusCode), `${authorization?.slice(0, 16) ?? 'none'}: ${response.statusCode}`)
        t.notOk(response.body.includes('"active":true'), 'nothing disclosed')
      }
    },
  },
]
