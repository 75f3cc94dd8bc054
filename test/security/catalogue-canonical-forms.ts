import type { InjectOptions } from 'fastify'
import { json } from '../helpers/app.js'
import * as users from '../helpers/users.js'
import { assertInvalidGrant } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, decodePart, uniqueEmail } from './context.js'

/**
 * Canonical forms and storable values (security review, findings 5-7).
 */

export const canonicalFormCases: AttackCase[] = [
  {
    id: 'IN-12',
    title: 'an admin cannot lock themself out through another spelling of their own id (upper or mixed case)',
    source: 'RFC 9562 §4 (UUIDs are case-insensitive on input); ASVS 5.0 V1.1.1 (canonical form before checks); CWE-178',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('lockout'))
      const id = decodePart(admin.access_token, 1).sub as string
      for (const spelling of [id.toUpperCase(), id.replace(/[a-f]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c))]) {
        for (const payload of [{ disabled: true }, { role: 'user' }]) {
          const response = await ctx.app.inject({ method: 'PATCH', url: `/admin/users/${spelling}`, headers: { authorization: `Bearer ${admin.access_token}` }, payload })
          t.equal(response.statusCode, 400, `${spelling} ${JSON.stringify(payload)}: 400 (${response.body.slice(0, 100)})`)
          t.equal(json(response).code, 'self_lockout')
        }
      }
      t.match(await ctx.app.db.user.findUniqueOrThrow({ where: { id } }), { role: 'admin', disabled: false }, 'still an enabled admin')
    },
  },
  {
    id: 'IN-13',
    title: 'urn:uuid:, braced and unhyphenated ids are 400 on every id route, never a database error',
    source: 'RFC 9562 §4 and RFC 4122 §3 (the urn:uuid: URN names a UUID, it is not its string form); CWE-20; DESIGN §4',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('urn-admin'))
      const user = await ctx.signup('urn-user')
      const sid = decodePart(user.access_token, 1).sid as string
      const key = await ctx.createApiKey(user.access_token)
      const spellings = (id: string) => [`urn:uuid:${id}`, `URN:UUID:${id.toUpperCase()}`, `{${id}}`, id.replaceAll('-', '')]
      const routes: [string, string, string, Record<string, unknown>?][] = [
        ...spellings(sid).map((s) => ['DELETE', `/auth/sessions/${s}`, user.access_token] as [string, string, string]),
        ...spellings(key.id).map((s) => ['DELETE', `/api-keys/${s}`, user.access_token] as [string, string, string]),
        ...spellings(user.id).flatMap((s) => [
          ['GET', `/admin/users/${s}`, admin.access_token],
          ['PATCH', `/admin/users/${s}`, admin.access_token, { disabled: true }],
          ['GET', `/admin/users/${s}/sessions`, admin.access_token],
          ['DELETE', `/admin/users/${s}/sessions`, admin.access_token],
          ['GET', `/admin/audit-events?userId=${encodeURIComponent(s)}`, admin.access_token],
        ] as [string, string, string, Record<string, unknown>?][]),
        ...spellings(sid).map((s) => ['DELETE', `/admin/sessions/${s}`, admin.access_token] as [string, string, string]),
      ]
      for (const [method, url, token, payload] of routes) {
        const response = await ctx.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })
        t.equal(response.statusCode, 400, `${method} ${url}: 400 (${response.body.slice(0, 80)})`)
      }
      t.notOk(await ctx.sessionRevoked(user.access_token), 'the session is alive')
      t.equal((await ctx.me(`Bearer ${key.key}`)).statusCode, 200, 'the key is alive')
      t.equal((await ctx.app.db.user.findUniqueOrThrow({ where: { id: user.id } })).disabled, false, 'the user is enabled')
    },
  },
  {
    id: 'IN-14',
    title: 'leap seconds, impossible days and years outside 0001-9999 in date-time input are 400, never 500',
    source: 'RFC 3339 §5.6-5.7; RFC 9557 §1.2 (RFC 3339 syntax kept); ECMA-262 §21.4.1 (Date range); DESIGN §4',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('dates-admin'))
      const user = await ctx.signup('dates-user')
      await users.markAddressVerified(ctx.app, user.access_token)
      const values = ['2030-12-31T23:59:60Z', '2016-12-31T23:59:60.5+00:00', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-00:01', '10000-01-01T00:00:00Z', '-271821-04-20T00:00:00Z', '+275760-09-13T00:00:00Z', '2031-02-29T00:00:00Z']
      for (const value of values) {
        const key = await ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${user.access_token}` }, payload: { name: 'k', scopes: ['profile'], expiresAt: value } })
        t.equal(key.statusCode, 400, `expiresAt ${value}: 400 (${key.body.slice(0, 80)})`)
        for (const name of ['since', 'until']) {
          const audit = await ctx.app.inject({ method: 'GET', url: `/admin/audit-events?${name}=${encodeURIComponent(value)}`, headers: { authorization: `Bearer ${admin.access_token}` } })
          t.equal(audit.statusCode, 400, `${name} ${value}: 400`)
        }
      }
      const last = await ctx.app.inject({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${user.access_token}` }, payload: { name: 'k', scopes: ['profile'], expiresAt: '9999-12-31T23:59:59.999Z' } })
      t.equal(last.statusCode, 201, 'the last storable instant is accepted')
    },
  },
  {
    id: 'IN-15',
    title: 'U+0000 in any stored or searched text (key name, admin search, email, username) is 400, never a database error',
    source: 'OWASP Input Validation Cheat Sheet; CWE-158 (null byte); PostgreSQL SQLSTATE 22021; DESIGN §4',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('nul-admin'))
      const user = await ctx.signup('nul-user')
      const requests: [string, InjectOptions][] = [
        ['api key name', { method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${user.access_token}` }, payload: { name: 'a\u0000b', scopes: ['profile'] } }],
        ['admin search q', { method: 'GET', url: '/admin/users?q=%00', headers: { authorization: `Bearer ${admin.access_token}` } }],
        ['admin search q inside', { method: 'GET', url: '/admin/users?q=a%00b', headers: { authorization: `Bearer ${admin.access_token}` } }],
        ['sign-up email', { method: 'POST', url: '/auth/signup', payload: { email: `a\u0000${uniqueEmail('nul')}`, password: PASSWORD } }],
        ['token username', { method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: `${user.email}\u0000`, password: PASSWORD } }],
      ]
      for (const [label, request] of requests) {
        const response = await ctx.app.inject(request)
        t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 100)})`)
        t.match(response.body, /U\+0000/, `${label}: the answer names the character`)
      }
    },
  },
  {
    id: 'IN-16',
    title: 'forged pagination cursors (id past bigint, year -271821 or +275760, extra or non-canonical fields) are 400 invalid_cursor',
    source: 'OWASP Input Validation Cheat Sheet (validate the whole structure); CWE-190; CWE-20; DESIGN §4',
    async run (ctx, t) {
      const admin = await ctx.makeAdmin(await ctx.signup('cursor-admin'))
      const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const id = decodePart(admin.access_token, 1).sub as string
      const forged: [string, string][] = [
        ...['9223372036854775808', '18446744073709551616', '0', '-1', '01'].map((v) => ['/admin/audit-events', b64json({ id: v })] as [string, string]),
        ['/admin/audit-events', b64json({ id: '1', at: '2026-01-01T00:00:00.000Z' })],
        ...['-271821-04-20T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '0000-01-01T00:00:00.000Z', '2016-12-31T23:59:60.000Z'].map(
          (at) => ['/admin/users', b64json({ at, id })] as [string, string]
        ),
        ['/admin/users', b64json({ at: '2026-01-01T00:00:00.000Z', id: id.toUpperCase() })],
        ['/admin/users', b64json({ at: '2026-01-01T00:00:00.000Z', id: `urn:uuid:${id}` })],
        ['/admin/users', b64json({ at: '2026-01-01T00:00:00.000Z', id, role: 'admin' })],
      ]
      for (const [path, cursor] of forged) {
        const response = await ctx.app.inject({ method: 'GET', url: `${path}?cursor=${cursor}`, headers: { authorization: `Bearer ${admin.access_token}` } })
        t.equal(response.statusCode, 400, `${path} ${Buffer.from(cursor, 'base64url').toString()}: 400 (${response.body.slice(0, 80)})`)
        t.equal(json(response).code, 'invalid_cursor')
      }
    },
  },
  {
    id: 'IN-17',
    title: 'an email is validated after NFKC: a fullwidth @ (U+FF20) that becomes a second @ is refused, at sign-up and login alike',
    source: 'Unicode TR #36 (normalisation changes syntax characters); RFC 5321 §4.1.2 (one @); OWASP Input Validation Cheat Sheet (canonicalise, then validate)',
    async run (ctx, t) {
      const victim = await ctx.signup('fwat')
      const [local, domain] = victim.email.split('@') as [string, string]
      const spoof = `${local}\uFF20${domain}@evil.example`
      const signup = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: spoof, password: PASSWORD } })
      t.equal(signup.statusCode, 400, 'sign-up: 400')
      t.equal(json(signup).code, 'invalid_email')
      t.equal(await ctx.app.db.user.count({ where: { email: { contains: '@evil.example' } } }), 0, 'no address with two @ is stored')
      const login = await ctx.passwordGrant(spoof, PASSWORD)
      assertInvalidGrant(t, login, 'login with it')
    },
  },
  {
    id: 'IN-18',
    title: 'NFKC expansion cannot smuggle an address past the RFC 5321 length limits (60 × U+FDFA, 22 × U+FB03)',
    source: 'RFC 5321 §4.5.3.1.1, §4.5.3.1.3; Unicode TR #36 (buffer overflows: NFKC expands up to 18×); CWE-1289',
    async run (ctx, t) {
      for (const [label, local] of [['60 × U+FDFA', '\uFDFA'.repeat(60)], ['22 × U+FB03 (66 octets)', '\uFB03'.repeat(22)], ['65 ASCII octets', 'a'.repeat(65)]] as const) {
        const email = `${local}@example.test`
        const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
        t.equal(response.statusCode, 400, `${label}: 400`)
        t.equal(json(response).code, 'invalid_email')
      }
      t.equal(await ctx.app.db.user.count({ where: { email: { startsWith: 'ffiffi' } } }), 0, 'nothing stored')
    },
  },
  {
    id: 'IN-19',
    title: 'invisible and control characters (zero-width, bidi, BOM, soft hyphen, Hangul filler) make no visual twin of an account; logging in with one is invalid_grant',
    source: 'Unicode UTS #39 (identifier profile: default-ignorables restricted); Unicode TR #36; RFC 8264 §4.2 (PRECIS IdentifierClass); ASVS 5.0 V6.3.8',
    async run (ctx, t) {
      const victim = await ctx.signup('twin')
      const [local, domain] = victim.email.split('@') as [string, string]
      for (const c of ['\u200B', '\u200C', '\u200D', '\u200E', '\u200F', '\u2060', '\u2062', '\u2064', '\uFEFF', '\u00AD', '\u202E', '\u3164', '\u034F', '\u0085']) {
        const twin = `${local.slice(0, 2)}${c}${local.slice(2)}@${domain}`
        const signup = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: twin, password: PASSWORD } })
        t.equal(signup.statusCode, 400, `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}: sign-up 400`)
        assertInvalidGrant(t, await ctx.passwordGrant(twin, PASSWORD), `U+${c.codePointAt(0)!.toString(16).padStart(4, '0')}: login`)
      }
      t.equal(await ctx.app.db.user.count({ where: { email: { contains: local.slice(2) } } }), 1, 'only the real account')
    },
  },
]
