import { json } from '../helpers/app.js'
import { assertNo5xx } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, decodePart, uniqueEmail, type Response, type Tokens } from './context.js'

/**
 * Hostile input (DESIGN §4, ASVS V1, V2, V15).
 */

export const inputCases: AttackCase[] = [
  {
    id: 'IN-01',
    title: 'an oversized JSON body is 413, never parsed',
    source: 'ASVS 5.0 V2.2.1 (input limits); CWE-770; DESIGN §4',
    async run (ctx, t) {
      const big = JSON.stringify({ email: uniqueEmail('big'), password: 'x'.repeat(200_000) })
      for (const url of ['/auth/signup', '/auth/token']) {
        const response = await ctx.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: big })
        t.equal(response.statusCode, 413, `${url}: 413`)
      }
    },
  },
  {
    id: 'IN-02',
    title: 'deeply nested JSON (20 000 levels) is a 4xx, the process survives',
    source: 'CWE-674 (uncontrolled recursion); DESIGN §4',
    async run (ctx, t) {
      const depth = 20_000
      const nested = '['.repeat(depth) + ']'.repeat(depth)
      const objects = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
      for (const [label, body] of [['arrays', `{"email":${nested}}`], ['objects', objects]] as const) {
        const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: { 'content-type': 'application/json' }, payload: body })
        assertNo5xx(t, response, `nested ${label}`)
      }
      t.equal((await ctx.app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'still healthy')
    },
  },
  {
    id: 'IN-03',
    title: 'prototype pollution through __proto__ keys is refused and pollutes nothing',
    source: 'ASVS 5.0 V15.3.6 (JavaScript prototype pollution); CWE-1321',
    async run (ctx, t) {
      const bodies = [
        `{"email":"${uniqueEmail('proto')}","password":"${PASSWORD}","__proto__":{"role":"admin","polluted":true}}`,
        '{"grant_type":"password","username":"x@attack.test","password":"y","__proto__":{"polluted":true}}',
        '{"name":"k","scopes":["profile"],"__proto__":{"polluted":true}}',
      ]
      for (const [i, url] of ['/auth/signup', '/auth/token', '/api-keys'].entries()) {
        const response = await ctx.app.inject({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.victim.access_token}` },
          payload: bodies[i]!,
        })
        assertNo5xx(t, response, url)
      }
      const form = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '__proto__[polluted]=true&grant_type=password&username=x%40attack.test&password=y&constructor[prototype][polluted]=true',
      })
      assertNo5xx(t, form, 'form body')
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype not polluted')
      const users = await ctx.app.db.user.count({ where: { role: 'admin', email: { startsWith: 'proto-' } } })
      t.equal(users, 0, 'no admin created through __proto__')
    },
  },
  {
    id: 'IN-04',
    title: 'prototype pollution through constructor.prototype keys is refused',
    source: 'ASVS 5.0 V15.3.6; CWE-1321',
    async run (ctx, t) {
      const body = `{"email":"${uniqueEmail('ctor')}","password":"${PASSWORD}","constructor":{"prototype":{"polluted":true}}}`
      const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: { 'content-type': 'application/json' }, payload: body })
      assertNo5xx(t, response, 'signup')
      const patch = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/json' },
        payload: '{"grant_type":"password","username":"a@attack.test","password":"p","constructor":{"prototype":{"isAdmin":true}}}',
      })
      assertNo5xx(t, patch, 'token')
      t.equal(({} as Record<string, unknown>).polluted, undefined)
      t.equal(({} as Record<string, unknown>).isAdmin, undefined)
    },
  },
  {
    id: 'IN-05',
    title: 'mass assignment: sign-up with role/disabled/id fields is refused',
    source: 'ASVS 5.0 V15.3.3 (mass assignment); CWE-915',
    async run (ctx, t) {
      for (const extra of [{ role: 'admin' }, { disabled: false, id: '00000000-0000-0000-0000-000000000000' }, { passwordHash: 'x' }]) {
        const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: uniqueEmail('mass'), password: PASSWORD, ...extra } })
        t.equal(response.statusCode, 400, `${Object.keys(extra).join(',')}: 400`)
      }
      t.equal(await ctx.app.db.user.count({ where: { role: 'admin', email: { startsWith: 'mass-' } } }), 0)
    },
  },
  {
    id: 'IN-06',
    title: 'unicode-confusable emails: fullwidth folds to the same account; Cyrillic and zero-width never log into it',
    source: 'ASVS 5.0 V6.3.8; Unicode UTS #39 (confusables); RFC 8265 (PRECIS)',
    async run (ctx, t) {
      const email = uniqueEmail('alice')
      const a = await ctx.signup('alice', { email })
      const fullwidth = email.replace('a', '\uFF41').replace('t', '\uFF54')
      const taken = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: fullwidth, password: PASSWORD } })
      t.equal(taken.statusCode, 409, 'fullwidth spelling is the same account (NFKC)')
      const viaFullwidth = await ctx.passwordGrant(fullwidth, PASSWORD)
      t.equal(viaFullwidth.statusCode, 200, 'and logs into it')
      t.equal(decodePart(json<Tokens>(viaFullwidth).access_token, 1).sub, a.id)
      for (const [label, spoof] of [['Cyrillic a', email.replace('a', '\u0430')], ['zero-width space', email.replace('@', '\u200B@')], ['combining mark', email.replace('a', 'a\u0301')]] as const) {
        const login = await ctx.passwordGrant(spoof, PASSWORD)
        t.equal(login.statusCode, 400, `${label}: does not log into the real account`)
        const signup = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: spoof, password: PASSWORD } })
        assertNo5xx(t, signup.statusCode === 201 ? { ...signup, statusCode: 400 } as Response : signup, `${label} sign-up`)
        if (signup.statusCode === 201) {
          t.not(json<{ user: { id: string } }>(signup).user.id, a.id, `${label}: a distinct account, never the victim's`)
        }
      }
    },
  },
  {
    id: 'IN-07',
    title: 'NUL bytes, operator objects and wrong JSON types are 4xx, never 500; a NUL never truncates a password',
    source: 'ASVS 5.0 V2.2.1; DESIGN §4',
    async run (ctx, t) {
      const payloads: unknown[] = [
        { email: 'a\u0000b@attack.test', password: PASSWORD },
        { email: 123, password: PASSWORD },
        { email: [uniqueEmail('arr')], password: PASSWORD },
        { email: { $ne: null }, password: PASSWORD },
        { email: uniqueEmail('bool'), password: true },
        null,
        [],
        'string',
      ]
      for (const payload of payloads) {
        const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
        t.ok(response.statusCode >= 400 && response.statusCode < 500, `${JSON.stringify(payload).slice(0, 40)}: ${response.statusCode}`)
      }
      const token = await ctx.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: { $gt: '' }, password: { $gt: '' } } })
      t.equal(token.statusCode, 400, 'operator objects in the token endpoint: 400')
      // A NUL inside a password is a character like any other (any composition is allowed), never a terminator.
      const email = uniqueEmail('nul')
      const signup = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: 'pass\u0000word123' } })
      t.equal(signup.statusCode, 201, 'a password with a NUL is accepted')
      t.equal((await ctx.passwordGrant(email, 'pass\u0000zzzzzzzz')).statusCode, 400, 'the part after the NUL counts (no C-string truncation)')
      t.equal((await ctx.passwordGrant(email, 'pass')).statusCode, 400, 'the part before the NUL alone does not log in')
      t.equal((await ctx.passwordGrant(email, 'pass\u0000word123')).statusCode, 200, 'the exact password does')
    },
  },
  {
    id: 'IN-08',
    title: 'SQL injection in login and admin search is treated as data',
    source: 'ASVS 5.0 V1.2.4 (parameterised queries); CWE-89',
    async run (ctx, t) {
      for (const username of ["' OR '1'='1' --@x.test", `${ctx.victim.email}' --`, "x@x.test'; DROP TABLE users; --"]) {
        const response = await ctx.passwordGrant(username, "' OR '1'='1")
        t.equal(response.statusCode, 400, `login ${username.slice(0, 20)}: 400`)
      }
      const admin = await ctx.makeAdmin(await ctx.signup('sqli-admin'))
      for (const q of ["' OR 1=1 --", '%', '_', "\\' OR 1=1"]) {
        const response = await ctx.app.inject({ method: 'GET', url: `/admin/users?q=${encodeURIComponent(q)}`, headers: { authorization: `Bearer ${admin.access_token}` } })
        t.equal(response.statusCode, 200, `q ${q}`)
        t.equal(json<{ items: unknown[] }>(response).items.length, 0, `q ${q}: matches nothing`)
      }
      t.ok((await ctx.app.db.user.count()) > 0, 'users table intact')
    },
  },
  {
    id: 'IN-09',
    title: 'duplicate form parameters at the token endpoint are refused',
    source: 'RFC 6749 §3.2 ("parameters MUST NOT be included more than once"); CWE-235 (HTTP parameter pollution)',
    async run (ctx, t) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=password&grant_type=refresh_token&username=${encodeURIComponent(ctx.victim.email)}&password=${encodeURIComponent(PASSWORD)}`,
      })
      t.equal(response.statusCode, 400)
      t.equal(json(response).error, 'invalid_request')
      const twoUsers = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=password&username=${encodeURIComponent(ctx.victim.email)}&username=other%40x.test&password=${encodeURIComponent(PASSWORD)}`,
      })
      t.equal(twoUsers.statusCode, 400, 'two usernames: 400')
    },
  },
  {
    id: 'IN-10',
    title: 'content-type tricks never bypass body validation or reach a handler unparsed',
    source: 'CVE-2025-32442; CVE-2022-41919; CWE-436 (interpretation conflict)',
    async run (ctx, t) {
      // A body the schema refuses (an unknown field): with validation skipped it would create an account.
      const email = uniqueEmail('ctype')
      const payload = JSON.stringify({ email, password: PASSWORD, role: 'admin' })
      for (const type of [
        'application/json',
        ' application/json',
        'application/json\t',
        'APPLICATION/JSON',
        'application/json; charset=utf-7',
        'application/json ;',
        'application/jsonx',
        'application/xml',
        'text/plain',
        'text/plain; application/json',
        'application/x-www-form-urlencoded',
      ]) {
        const response = await ctx.app.inject({ method: 'POST', url: '/auth/signup', headers: { 'content-type': type }, payload })
        t.ok(response.statusCode >= 400 && response.statusCode < 500, `${JSON.stringify(type)}: ${response.statusCode}`)
      }
      t.equal(await ctx.app.db.user.count({ where: { email } }), 0, 'no account created')
      const token = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'text/plain' },
        payload: JSON.stringify({ grant_type: 'password', username: ctx.victim.email, password: PASSWORD }),
      })
      t.equal(token.statusCode, 415, 'text/plain at the token endpoint: 415')
    },
  },
  {
    id: 'IN-11',
    title: 'sign-up with an unknown client_id or a refused transport is a 4xx in the error shape, never 500',
    source: 'RFC 6749 §5.2 (invalid_client); DESIGN §4; found by schema-fuzz (was 500)',
    async run (ctx, t) {
      const unknown = await ctx.app.inject({ method: 'POST', url: '/auth/signup', payload: { email: uniqueEmail('client'), password: PASSWORD, client_id: 'nope' } })
      t.equal(unknown.statusCode, 401, 'unknown client: 401')
      t.equal(json(unknown).code, 'invalid_client')
      const transport = await ctx.app.inject({
        method: 'POST',
        url: '/auth/signup',
        headers: { 'token-transport': 'body' },
        payload: { email: uniqueEmail('transport'), password: PASSWORD, client_id: 'web' },
      })
      t.equal(transport.statusCode, 400, 'refused transport: 400')
      t.equal(json(transport).code, 'invalid_request')
      const token = await ctx.passwordGrant(ctx.victim.email, PASSWORD, { client_id: 'nope' })
      t.equal(token.statusCode, 401)
      t.equal(json(token).error, 'invalid_client', 'the token endpoint keeps the RFC 6749 shape')
    },
  },
]
