import { randomBytes } from 'node:crypto'
import { json } from '../helpers/app.js'
import { assertInvalidToken } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { b64, decodePart, hs256 } from './context.js'

/**
 * JWT forgery (RFC 8725, RFC 9068, ASVS V9): each class of forged or misused
 * token once, as an attack with its source; every variant in depth is in
 * test/http/authentication.test.ts.
 */

export const jwtCases: AttackCase[] = [
  {
    id: 'JWT-01',
    title: 'alg none (any case) with and without a signature is refused',
    source: 'RFC 8725 §2.1, §3.2; ASVS 5.0 V9.1.2',
    async run (ctx, t) {
      const c = ctx.claims()
      for (const alg of ['none', 'None', 'NONE']) {
        assertInvalidToken(t, await ctx.bearer(`${b64(ctx.header({ alg }))}.${b64(c)}.`), `alg ${alg}`)
      }
      const [, payload, signature] = ctx.victim.access_token.split('.')
      assertInvalidToken(t, await ctx.bearer(`${b64(ctx.header({ alg: 'none' }))}.${payload}.${signature}`), 'alg none, original signature kept')
    },
  },
  {
    id: 'JWT-02',
    title: 'HS256 signed with the published public key (PEM) is refused (algorithm confusion)',
    source: 'RFC 8725 §2.1, §3.1; ASVS 5.0 V9.1.2',
    async run (ctx, t) {
      assertInvalidToken(t, await ctx.bearer(hs256(ctx.serverPem, ctx.header({ alg: 'HS256' }), ctx.claims())), 'HS256 with the PEM')
      assertInvalidToken(t, await ctx.bearer(hs256(` ${ctx.serverPem}`, ctx.header({ alg: 'HS256' }), ctx.claims())), 'HS256 with a whitespace-prefixed PEM')
    },
  },
  {
    id: 'JWT-03',
    title: 'HS256 signed with the public JWK as the secret is refused',
    source: 'RFC 8725 §2.1, §3.1; ASVS 5.0 V9.1.2',
    async run (ctx, t) {
      assertInvalidToken(t, await ctx.bearer(hs256(JSON.stringify(ctx.serverJwk), ctx.header({ alg: 'HS256' }), ctx.claims())))
      assertInvalidToken(t, await ctx.bearer(hs256(String(ctx.serverJwk.x), ctx.header({ alg: 'HS256' }), ctx.claims())), 'HS256 with the x coordinate')
    },
  },
  {
    id: 'JWT-04',
    title: 'kid path traversal (../../dev/null with an empty HMAC key) is refused',
    source: 'RFC 8725 §2.9, §3.10; ASVS 5.0 V9.1.3',
    async run (ctx, t) {
      for (const kid of ['../../../../../../dev/null', '/dev/null', '..\\..\\windows\\win.ini', '/proc/self/environ']) {
        assertInvalidToken(t, await ctx.bearer(hs256('', ctx.header({ alg: 'HS256', kid }), ctx.claims())), `kid ${kid}`)
        assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({ kid })), `server-signed, kid ${kid}`)
      }
    },
  },
  {
    id: 'JWT-05',
    title: 'kid SQL injection is refused and leaves the key store intact',
    source: 'RFC 8725 §2.9, §3.10; ASVS 5.0 V9.1.3',
    async run (ctx, t) {
      const before = await ctx.app.db.signingKey.count()
      for (const kid of ["' OR '1'='1", `${ctx.serverKid}' --`, "x'; DROP TABLE signing_keys; --", `' UNION SELECT '${ctx.serverPem}' --`]) {
        assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ kid })), `kid ${kid.slice(0, 30)}`)
        assertInvalidToken(t, await ctx.bearer(hs256('', ctx.header({ alg: 'HS256', kid }), ctx.claims())), `HS256 kid ${kid.slice(0, 30)}`)
      }
      t.equal(await ctx.app.db.signingKey.count(), before, 'signing keys unchanged')
      t.equal((await ctx.bearer(ctx.victim.access_token)).statusCode, 200, 'valid tokens still accepted')
    },
  },
  {
    id: 'JWT-06',
    title: 'kid as a URL (attacker-hosted key) is refused',
    source: 'RFC 8725 §2.9, §3.10; ASVS 5.0 V9.1.3',
    async run (ctx, t) {
      for (const kid of ['https://evil.example/key.pem', 'http://127.0.0.1:6379/', 'file:///etc/passwd']) {
        assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ kid })), `kid ${kid}`)
      }
    },
  },
  {
    id: 'JWT-07',
    title: 'jku header naming an attacker JWKS is ignored',
    source: 'RFC 8725 §2.9, §3.10; ASVS 5.0 V9.1.3',
    async run (ctx, t) {
      const jku = 'https://evil.example/.well-known/jwks.json'
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ jku })), 'attacker kid + jku')
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ jku, kid: ctx.serverKid })), 'server kid + jku, attacker signature')
      t.equal((await ctx.bearer(ctx.serverSigned({ jku }))).statusCode, 200, 'a jku header on a server-signed token changes nothing (ignored, not trusted)')
    },
  },
  {
    id: 'JWT-08',
    title: 'x5u header naming an attacker certificate is ignored',
    source: 'RFC 8725 §3.10; ASVS 5.0 V9.1.3',
    async run (ctx, t) {
      const x5u = 'https://evil.example/cert.pem'
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ x5u })), 'attacker kid + x5u')
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ x5u, kid: ctx.serverKid })), 'server kid + x5u')
    },
  },
  {
    id: 'JWT-09',
    title: 'embedded jwk header with the attacker key is not trusted',
    source: 'RFC 8725 §3.10; ASVS 5.0 V9.1.3; CVE-2018-0114',
    async run (ctx, t) {
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ jwk: ctx.attackerJwk })), 'attacker kid + jwk')
      assertInvalidToken(t, await ctx.bearer(ctx.attackerSigned({ jwk: ctx.attackerJwk, kid: undefined })), 'no kid + jwk')
    },
  },
  {
    id: 'JWT-10',
    title: 'an expired token is refused',
    source: 'RFC 8725 §3.10; RFC 9068 §4; ASVS 5.0 V9.2.1',
    async run (ctx, t) {
      const past = Math.floor(Date.now() / 1000) - 3600
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { iat: past - 600, exp: past })), 'exp an hour ago')
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { exp: Math.floor(Date.now() / 1000) - 5 })), 'exp 5 s ago')
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { exp: String(past + 7200) })), 'exp as a string')
    },
  },
  {
    id: 'JWT-11',
    title: 'a not-yet-valid token (nbf, iat in the future) is refused',
    source: 'RFC 7519 §4.1.5; RFC 9068 §4; ASVS 5.0 V9.2.1',
    async run (ctx, t) {
      const future = Math.floor(Date.now() / 1000) + 3600
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { nbf: future })), 'nbf in an hour')
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { iat: future, exp: future + 600 })), 'iat in an hour')
    },
  },
  {
    id: 'JWT-12',
    title: 'a token of another issuer is refused',
    source: 'RFC 8725 §3.8; RFC 9068 §4; ASVS 5.0 V9.2.3',
    async run (ctx, t) {
      for (const iss of ['https://evil.example', `${ctx.config.issuer}/`, `${ctx.config.issuer}.evil.example`, ctx.config.issuer.toUpperCase()]) {
        assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { iss })), `iss ${iss}`)
      }
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { iss: undefined })), 'no iss')
    },
  },
  {
    id: 'JWT-13',
    title: 'a token for another audience (resource) is refused',
    source: 'RFC 8725 §3.9; RFC 6750 §5.2; RFC 9700 §4.10.2; ASVS 5.0 V9.2.3',
    async run (ctx, t) {
      for (const aud of ['https://other-service.example', [`${ctx.config.audience}x`], []]) {
        assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { aud })), `aud ${JSON.stringify(aud)}`)
      }
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({}, { aud: undefined })), 'no aud')
    },
  },
  {
    id: 'JWT-14',
    title: 'a token of another type (typ JWT, id_token, missing) is refused',
    source: 'RFC 8725 §3.11, §3.12; RFC 9068 §4; ASVS 5.0 V9.2.2',
    async run (ctx, t) {
      for (const typ of ['JWT', 'jwt', 'id_token+jwt', 'logout+jwt', 'application/jwt', undefined]) {
        assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({ typ })), `typ ${String(typ)}`)
      }
    },
  },
  {
    id: 'JWT-15',
    title: 'a tampered payload (role admin, another sub) with the original signature is refused',
    source: 'RFC 8725 §3.3; RFC 6750 §5.1; ASVS 5.0 V9.1.1',
    async run (ctx, t) {
      const [h, p, s] = ctx.victim.access_token.split('.') as [string, string, string]
      const claims = decodePart(ctx.victim.access_token, 1)
      assertInvalidToken(t, await ctx.bearer(`${h}.${b64({ ...claims, role: 'admin' })}.${s}`), 'role admin')
      assertInvalidToken(t, await ctx.bearer(`${h}.${b64({ ...claims, sub: randomBytes(16).toString('hex') })}.${s}`), 'another sub')
      const flipped = Buffer.from(s, 'base64url')
      flipped[10] = flipped[10]! ^ 1
      assertInvalidToken(t, await ctx.bearer(`${h}.${p}.${flipped.toString('base64url')}`), 'one signature bit flipped')
      const admin = await ctx.app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${h}.${b64({ ...claims, role: 'admin' })}.${s}` } })
      t.equal(admin.statusCode, 401, 'the admin API refuses the tampered token')
    },
  },
  {
    id: 'JWT-16',
    title: 'ECDSA "psychic signature" (r = s = 0) is refused',
    source: 'RFC 8725 §3.3, §3.4; CVE-2022-21449; ASVS 5.0 V9.1.1',
    async run (ctx, t) {
      const input = `${b64(ctx.header())}.${b64(ctx.claims())}`
      assertInvalidToken(t, await ctx.bearer(`${input}.${Buffer.alloc(64).toString('base64url')}`), 'zero signature')
      assertInvalidToken(t, await ctx.bearer(`${input}.${Buffer.alloc(64, 0xff).toString('base64url')}`), 'r = s = 2^256 - 1')
    },
  },
  {
    id: 'JWT-17',
    title: 'another algorithm under the server kid (ES384, RS256, EdDSA, PS256) is refused',
    source: 'RFC 8725 §3.1; ASVS 5.0 V9.1.2',
    async run (ctx, t) {
      for (const alg of ['ES384', 'ES512', 'RS256', 'PS256', 'EdDSA', 'ES256K']) {
        assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({ alg })), `alg ${alg}`)
      }
    },
  },
  {
    id: 'JWT-18',
    title: 'a crit header naming an unknown extension is refused',
    source: 'RFC 7515 §4.1.11; RFC 8725 §3.1; GHSA-hm7r-c7qw-ghp6',
    async run (ctx, t) {
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({ crit: ['exp-ext'], 'exp-ext': true })), 'crit exp-ext')
      assertInvalidToken(t, await ctx.bearer(ctx.serverSigned({ crit: ['b64'], b64: false })), 'crit b64 false')
    },
  },
  {
    id: 'JWT-19',
    title: 'a refresh token or API key presented as a Bearer access token is refused',
    source: 'RFC 8725 §3.12; ASVS 5.0 V9.2.2',
    async run (ctx, t) {
      const account = await ctx.signup('cross-type')
      assertInvalidToken(t, await ctx.bearer(account.refresh_token), 'refresh token as Bearer')
      const key = await ctx.createApiKey(account.access_token)
      const sessions = await ctx.app.inject({ method: 'GET', url: '/auth/sessions', headers: { authorization: `Bearer ${key.key}` } })
      assertInvalidToken(t, sessions, 'API key on an access-token-only route')
    },
  },
  {
    id: 'JWT-20',
    title: 'an access token presented as a refresh token is refused',
    source: 'RFC 8725 §3.12; RFC 6749 §6; ASVS 5.0 V9.2.2',
    async run (ctx, t) {
      const response = await ctx.refresh(ctx.victim.access_token)
      t.equal(response.statusCode, 400)
      t.ok(['invalid_grant', 'invalid_request'].includes(json(response).error as string), `refused with ${json(response).error}`)
      const short = await ctx.refresh(ctx.victim.access_token.split('.')[2]!.slice(0, 43))
      t.equal(short.statusCode, 400, 'its signature cut to refresh-token shape: 400')
    },
  },
  {
    id: 'JWT-21',
    title: 'an access token in the URL query (access_token=) is not accepted',
    source: 'RFC 6750 §5.3 ("don\'t pass bearer tokens in page URLs"), §2.3',
    async run (ctx, t) {
      const response = await ctx.app.inject({ method: 'GET', url: `/users/me?access_token=${ctx.victim.access_token}` })
      t.equal(response.statusCode, 401, 'query token ignored: 401')
      t.equal(response.headers['www-authenticate'], 'Bearer', 'treated as no credentials at all')
    },
  },
  {
    id: 'JWT-22',
    title: "a revoked session's access token is refused at once",
    source: 'RFC 9700 §2.2.2; ASVS 5.0 V7.4.1',
    async run (ctx, t) {
      const account = await ctx.signup('revoked-at')
      t.equal((await ctx.bearer(account.access_token)).statusCode, 200, 'accepted (and cached) before')
      const logout = await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${account.access_token}` } })
      t.equal(logout.statusCode, 204)
      assertInvalidToken(t, await ctx.bearer(account.access_token), 'after logout')
    },
  },
  {
    id: 'JWT-23',
    title: 'structurally hostile JWTs (non-string kid, array claims, non-JSON parts, 12 KB header) are 401, never 500',
    source: 'RFC 8725 §2.6, §3.10; RFC 7515 §5.2; ASVS 5.0 V9.1.1',
    async run (ctx, t) {
      const signature = ctx.victim.access_token.split('.')[2]!
      const tokens = [
        ctx.serverSigned({ kid: [ctx.serverKid] }),
        ctx.serverSigned({ kid: { $ne: null } }),
        ctx.serverSigned({ kid: 1 }),
        `${b64(ctx.header())}.${b64([ctx.claims()])}.${signature}`,
        `${b64(ctx.header())}.${b64('not json')}.${signature}`,
        `${b64('not json')}.${b64(ctx.claims())}.${signature}`,
        `${b64(ctx.header({ pad: 'x'.repeat(12_000) }))}.${b64(ctx.claims())}.${signature}`,
        `${b64(ctx.header())}.${b64(ctx.claims({ sub: 42, sid: null }))}.${signature}`,
        ctx.attackerSigned({}, { sub: { id: 1 }, role: ['admin'] }),
        hs256('', ctx.header({ alg: 'HS256', kid: { toString: null } }), ctx.claims()),
      ]
      for (const [i, token] of tokens.entries()) {
        const response = await ctx.bearer(token)
        t.equal(response.statusCode, 401, `token ${i}: 401`)
      }
    },
  },
]
