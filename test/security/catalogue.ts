import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { InjectOptions } from 'fastify'
import type { Test } from 'tap'
import { startEmbeddedDatabase } from '../../src/db/embedded.js'
import { buildTestApp, json } from '../helpers/app.js'
import { holdNextSessionStart } from '../helpers/hold.js'
import * as users from '../helpers/users.js'
import { canSwitchUser, intrudeAsOtherUser } from '../helpers/other-user.js'
import { stepUpCases } from './catalogue-step-up.js'
import { totpCases } from './catalogue-totp.js'
import { passkeyCases } from './catalogue-passkeys.js'
import { takeoverCases } from './catalogue-takeover.js'
import {
  AttackContext,
  EVIL_ORIGIN,
  PASSWORD,
  SPA_ORIGIN,
  b64,
  decodePart,
  hs256,
  setCookies,
  uniqueEmail,
  type Response,
  type Tokens,
} from './context.js'

/**
 * The attack catalogue: every case names the attack, the requirement it
 * checks (RFC 8725 JWT BCP, RFC 6749 §10, RFC 9700 OAuth security BCP,
 * RFC 6750 §5, OWASP ASVS 5.0 V3/V6/V7/V9 and input handling) and runs it
 * against the real service. attack-catalogue.test.ts runs each as one tap
 * subtest `<id> <title> [<source>]`; CATALOGUE.md lists them with results.
 *
 * Forged-JWT classes are covered in depth (every variant) by
 * test/http/authentication.test.ts; here each class appears once, as an
 * attack with its source, next to the session, cookie, enumeration and input
 * attacks.
 */

export interface AttackCase {
  id: string
  title: string
  source: string
  run(ctx: AttackContext, t: Test): Promise<void>
}

function assertInvalidToken (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 120)})`)
  t.match(String(response.headers['www-authenticate'] ?? ''), /^Bearer error="invalid_token"/, `${label}: RFC 6750 invalid_token challenge`)
}

function assertInvalidGrant (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 120)})`)
  t.equal(json(response).error, 'invalid_grant', `${label}: invalid_grant`)
}

function assertNo5xx (t: Test, response: Response, label: string) {
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${label}: 4xx, got ${response.statusCode} (${response.body.slice(0, 120)})`)
}

const cookieHeaders = (name: string, value: string, extra: Record<string, string> = {}) => ({
  cookie: `${name}=${value}`,
  ...extra,
})

/**
 * The token of the newest message of `template` queued for `to`, read as the
 * development mailbox shows it (the catalogue's service has no SMTP_URL).
 */
async function mailedToken (ctx: AttackContext, to: string, template: string): Promise<string> {
  await ctx.app.recovery.settled()
  const row = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: to, template }, orderBy: { createdAt: 'desc' } })
  const match = /token=([A-Za-z0-9_-]{43})/.exec(ctx.app.outbox.render(row).text)
  if (!match) throw new Error(`no token in the ${template} message to ${to}`)
  return match[1]!
}

const requestReset = (ctx: AttackContext, email: string, options: { remoteAddress?: string; headers?: Record<string, string> } = {}) =>
  ctx.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, ...options })
const confirmReset = (ctx: AttackContext, token: unknown, newPassword = 'a brand new passphrase') =>
  ctx.app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token, newPassword } })

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

export const cases: AttackCase[] = [
  // ---------------------------------------------------------------- JWT (RFC 8725, RFC 9068, ASVS V9)
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
  // ---------------------------------------------------------------- Refresh tokens (RFC 6749 §10.4, RFC 9700 §4.14)
  {
    id: 'RT-01',
    title: 'refresh token replay after rotation (outside the grace window) revokes the whole family',
    source: 'RFC 9700 §4.14.2; RFC 6749 §10.4; ASVS 5.0 V7.2.4',
    async run (ctx, t) {
      const account = await ctx.signup('replay')
      const rotated = await ctx.refresh(account.refresh_token)
      t.equal(rotated.statusCode, 200)
      const successor = json<Tokens>(rotated).refresh_token
      await ctx.advance(ctx.config.refreshGraceSeconds + 1)
      const replay = await ctx.refresh(account.refresh_token)
      assertInvalidGrant(t, replay, 'the thief replays the retired token')
      assertInvalidGrant(t, await ctx.refresh(successor), "the victim's live successor is dead too")
      t.ok(await ctx.sessionRevoked(account.access_token), 'session revoked')
      const events = await ctx.app.db.auditEvent.count({ where: { type: 'refresh_token_reused', userId: account.id } })
      t.equal(events, 1, 'one refresh_token_reused audit event')
      assertInvalidToken(t, await ctx.bearer(json<Tokens>(rotated).access_token), "the family's access tokens are refused")
    },
  },
  {
    id: 'RT-02',
    title: 'a retry inside the grace window gets the same successor, never a second live token',
    source: 'RFC 9700 §4.14.2; DESIGN §3.5 rule 3',
    async run (ctx, t) {
      const account = await ctx.signup('grace')
      const first = json<Tokens>(await ctx.refresh(account.refresh_token)).refresh_token
      const retry = await ctx.refresh(account.refresh_token)
      t.equal(retry.statusCode, 200)
      t.equal(json<Tokens>(retry).refresh_token, first, 'same successor')
      t.equal((await ctx.sessionOf(account.access_token)).generation, 1, 'one rotation: the retry rotated nothing')
    },
  },
  {
    id: 'RT-03',
    title: '20 concurrent presentations of one refresh token yield exactly one successor',
    source: 'RFC 9700 §4.14.2; RFC 6749 §10.4',
    async run (ctx, t) {
      const account = await ctx.signup('race')
      const responses = await Promise.all(Array.from({ length: 20 }, () => ctx.refresh(account.refresh_token)))
      const tokens = new Set(responses.filter((r) => r.statusCode === 200).map((r) => json<Tokens>(r).refresh_token))
      t.equal(responses.filter((r) => r.statusCode >= 500).length, 0, 'no 5xx')
      t.equal(tokens.size, 1, 'one successor for all')
      t.equal((await ctx.sessionOf(account.access_token)).generation, 1, 'exactly one rotation')
    },
  },
  {
    id: 'RT-04',
    title: 'a refresh token of one client used by another client is refused and not rotated',
    source: 'RFC 6749 §10.4; RFC 9700 §4.14; ASVS 5.0 V9.2.3',
    async run (ctx, t) {
      const account = await ctx.signup('client-bound')
      for (const clientId of ['web', 'admin', 'nope']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          headers: { origin: SPA_ORIGIN, 'x-requested-with': 'x' },
          payload: { grant_type: 'refresh_token', refresh_token: account.refresh_token, client_id: clientId },
        })
        t.ok([400, 401].includes(response.statusCode), `client ${clientId}: ${response.statusCode}`)
        t.ok(['invalid_grant', 'invalid_client'].includes(json(response).error as string), `client ${clientId}: ${json(response).error}`)
      }
      t.equal((await ctx.refresh(account.refresh_token)).statusCode, 200, 'the token still refreshes for its own client')
    },
  },
  {
    id: 'RT-05',
    title: 'guessed and malformed refresh tokens are invalid_grant; issued tokens carry 256 random bits',
    source: 'RFC 6749 §10.10; RFC 9700 §4.14; ASVS 5.0 V7.2.3',
    async run (ctx, t) {
      // One character off the victim's token: a different character from its last one (it ends in 'A' one time in 64).
      const victim = ctx.victim.refresh_token
      const oneOff = victim.slice(0, -1) + (victim.endsWith('A') ? 'B' : 'A')
      // The token of the layout before DESIGN §3.13 (32 random bytes), and one of today's length.
      const guesses = [randomBytes(32).toString('base64url'), randomBytes(69).toString('base64url'), 'A'.repeat(43), 'A'.repeat(92), oneOff, "' OR 1=1 --", '']
      for (const guess of guesses) {
        const response = await ctx.refresh(guess)
        t.ok(response.statusCode === 400, `guess ${guess.slice(0, 12)}: 400`)
        t.ok(['invalid_grant', 'invalid_request'].includes(json(response).error as string))
      }
      const issued = await Promise.all(Array.from({ length: 5 }, async () => (await ctx.signup('entropy')).refresh_token))
      t.equal(new Set(issued).size, 5, 'all distinct')
      // version | session id (16) | generation (4) | secret (32) | MAC (16): the secret is bytes 21..53.
      const secrets = issued.map((token) => Buffer.from(token, 'base64url').subarray(21, 53).toString('hex'))
      for (const token of issued) t.equal(Buffer.from(token, 'base64url').length, 69, '69 bytes, of which 32 (256 bits) random')
      t.equal(new Set(secrets).size, 5, 'distinct secrets')
    },
  },
  {
    id: 'RT-06',
    title: 'a refresh token is dead after logout and after RFC 7009 revocation',
    source: 'RFC 7009 §2; RFC 9700 §2.2.2; ASVS 5.0 V7.4.1',
    async run (ctx, t) {
      const a = await ctx.signup('logout-rt')
      await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${a.access_token}` } })
      assertInvalidGrant(t, await ctx.refresh(a.refresh_token), 'after logout')
      const b = await ctx.login(a.email)
      const revoke = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: b.refresh_token, client_id: 'mobile' } })
      t.equal(revoke.statusCode, 200)
      assertInvalidGrant(t, await ctx.refresh(b.refresh_token), 'after RFC 7009 revocation')
    },
  },
  {
    id: 'RT-07',
    title: "another client cannot revoke a victim's refresh token through RFC 7009",
    source: 'RFC 7009 §2.1; RFC 6749 §10.4',
    async run (ctx, t) {
      const a = await ctx.signup('revoke-other')
      const revoke = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: a.refresh_token, client_id: 'web' } })
      t.equal(revoke.statusCode, 200, '200 as always (no oracle)')
      t.equal((await ctx.refresh(a.refresh_token)).statusCode, 200, 'the token still works')
    },
  },
  {
    id: 'RT-08',
    title: 'a password change revokes every other session (refresh and access tokens)',
    source: 'ASVS 5.0 V7.4.3; RFC 9700 §4.14.2',
    async run (ctx, t) {
      const a = await ctx.signup('pwchange')
      const other = await ctx.login(a.email)
      const change = await ctx.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: { authorization: `Bearer ${a.access_token}` },
        payload: { currentPassword: PASSWORD, newPassword: 'another fine passphrase' },
      })
      t.equal(change.statusCode, 204)
      assertInvalidGrant(t, await ctx.refresh(other.refresh_token), "the other session's refresh token")
      assertInvalidToken(t, await ctx.bearer(other.access_token), "the other session's access token")
      t.equal((await ctx.refresh(a.refresh_token)).statusCode, 200, 'the current session stays')
      assertInvalidGrant(t, await ctx.passwordGrant(a.email, PASSWORD), 'the old password no longer logs in')
    },
  },
  {
    id: 'RT-09',
    title: 'password change needs the current password (a stolen access token cannot take over)',
    source: 'ASVS 5.0 V6.2.3, V7.5.1',
    async run (ctx, t) {
      const a = await ctx.signup('pw-current')
      const change = await ctx.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: { authorization: `Bearer ${a.access_token}` },
        payload: { currentPassword: 'a wrong guess!!', newPassword: 'attacker chosen pass' },
      })
      t.equal(change.statusCode, 403)
      t.equal((await ctx.passwordGrant(a.email, PASSWORD)).statusCode, 200, 'the password is unchanged')
    },
  },
  {
    id: 'RT-10',
    title: 'a disabled user: login, refresh, access tokens and API keys all refused at once',
    source: 'ASVS 5.0 V7.4.2; RFC 6749 §5.2 (invalid_grant)',
    async run (ctx, t) {
      const a = await ctx.signup('disabled')
      const key = await ctx.createApiKey(a.access_token)
      const admin = await ctx.makeAdmin(await ctx.signup('disabler'))
      const patch = await ctx.app.inject({
        method: 'PATCH',
        url: `/admin/users/${a.id}`,
        headers: { authorization: `Bearer ${admin.access_token}` },
        payload: { disabled: true },
      })
      t.equal(patch.statusCode, 200)
      assertInvalidGrant(t, await ctx.passwordGrant(a.email, PASSWORD), 'login')
      assertInvalidGrant(t, await ctx.refresh(a.refresh_token), 'refresh')
      assertInvalidToken(t, await ctx.bearer(a.access_token), 'access token')
      assertInvalidToken(t, await ctx.me(undefined, { 'x-api-key': key.key }), 'API key')
    },
  },
  {
    id: 'RT-11',
    title: 'idle and absolute session expiry are enforced',
    source: 'ASVS 5.0 V7.3.1, V7.3.2; RFC 9700 §4.14.2',
    async run (ctx, t) {
      const a = await ctx.signup('idle')
      await ctx.advance(ctx.config.clients.mobile!.refreshIdleTtlSeconds + 1)
      assertInvalidGrant(t, await ctx.refresh(a.refresh_token), 'past the idle expiry')
      const b = await ctx.signup('absolute')
      let token = b.refresh_token
      const step = Math.floor(ctx.config.clients.mobile!.refreshIdleTtlSeconds / 2)
      let elapsed = 0
      while (elapsed <= ctx.config.clients.mobile!.refreshAbsoluteTtlSeconds) {
        await ctx.advance(step)
        elapsed += step
        const response = await ctx.refresh(token)
        if (response.statusCode !== 200) break
        token = json<Tokens>(response).refresh_token
      }
      t.ok(elapsed <= ctx.config.clients.mobile!.refreshAbsoluteTtlSeconds + step, 'rotation stopped by the absolute expiry')
      assertInvalidGrant(t, await ctx.refresh(token), 'past the absolute expiry, however often it rotated')
    },
  },
  {
    id: 'RT-12',
    title: 'credentials in the token endpoint URL (query parameters, GET) are not accepted',
    source: 'RFC 6749 §3.2 (POST only), §2.3.1; RFC 9700 §4.3 (leakage via browser history)',
    async run (ctx, t) {
      const a = await ctx.signup('query-creds')
      const query = `grant_type=refresh_token&client_id=mobile&refresh_token=${a.refresh_token}`
      const post = await ctx.app.inject({ method: 'POST', url: `/auth/token?${query}`, headers: { 'content-type': 'application/json' }, payload: '{}' })
      t.equal(post.statusCode, 400, 'POST with the parameters in the query: 400')
      const get = await ctx.app.inject({ method: 'GET', url: `/auth/token?${query}` })
      t.ok([404, 405].includes(get.statusCode), `GET: ${get.statusCode}`)
      const login = await ctx.app.inject({ method: 'POST', url: `/auth/token?grant_type=password&username=${encodeURIComponent(a.email)}&password=${encodeURIComponent(PASSWORD)}`, headers: { 'content-type': 'application/json' }, payload: '{}' })
      t.equal(login.statusCode, 400, 'password in the query: 400')
      t.equal((await ctx.sessionOf(a.access_token)).generation, 0, 'nothing rotated')
    },
  },
  {
    id: 'RT-13',
    title: 'a forged refresh token naming a real session (its id, an old generation) neither rotates nor revokes it, and writes nothing',
    source: 'RFC 6749 §10.10 (credential guessing); RFC 9700 §4.14.2 (reuse detection must not be a lever for others); DESIGN §3.13',
    async run (ctx, t) {
      const a = await ctx.signup('forged-family')
      const rotated = await ctx.refresh(a.refresh_token)
      t.equal(rotated.statusCode, 200)
      const live = json<Tokens>(rotated).refresh_token
      const before = await ctx.sessionOf(a.access_token)
      const events = await ctx.app.db.auditEvent.count({ where: { userId: a.id } })
      // Whoever saw an access token knows the session id; they can write any generation and secret, but not the MAC.
      const bytes = Buffer.from(live, 'base64url')
      const forgeries: Buffer[] = []
      const oldGeneration = Buffer.from(bytes)
      oldGeneration.writeUInt32BE(0, 17)
      forgeries.push(oldGeneration)
      const otherSecret = Buffer.from(bytes)
      randomBytes(32).copy(otherSecret, 21)
      forgeries.push(otherSecret)
      const otherMac = Buffer.from(bytes)
      randomBytes(16).copy(otherMac, 53)
      forgeries.push(otherMac)
      for (const forged of forgeries) assertInvalidGrant(t, await ctx.refresh(forged.toString('base64url')), 'forged token of the session')
      const after = await ctx.sessionOf(a.access_token)
      t.equal(after.revokedAt, null, 'the session is not revoked')
      t.equal(after.generation, before.generation, 'nor rotated')
      t.same(after.lastRefreshedAt, before.lastRefreshedAt, 'nor touched')
      t.equal(await ctx.app.db.auditEvent.count({ where: { userId: a.id } }), events, 'no audit event written')
      t.equal((await ctx.refresh(live)).statusCode, 200, 'the live token still refreshes')
    },
  },
  {
    id: 'RT-14',
    title: 'the first refresh token of a session, presented after 300 rotations, is recognised as reuse and revokes it',
    source: 'RFC 9700 §4.14.2 (an invalidated refresh token presented informs the server of the breach); DESIGN §3.13',
    async run (ctx, t) {
      const a = await ctx.signup('long-family')
      let token = a.refresh_token
      for (let i = 0; i < 300; i++) {
        const response = await ctx.refresh(token)
        if (response.statusCode !== 200) break
        token = json<Tokens>(response).refresh_token
      }
      t.equal((await ctx.sessionOf(a.access_token)).generation, 300, '300 rotations')
      await ctx.advance(ctx.config.refreshGraceSeconds + 1)
      assertInvalidGrant(t, await ctx.refresh(a.refresh_token), 'the first token, stolen long ago')
      const session = await ctx.sessionOf(a.access_token)
      t.equal(session.revokedReason, 'refresh_token_reused', 'revoked as reuse')
      t.equal(await ctx.app.db.auditEvent.count({ where: { userId: a.id, type: 'refresh_token_reused' } }), 1, 'audited once')
      assertInvalidGrant(t, await ctx.refresh(token), 'the live token died with it')
    },
  },
  // ---------------------------------------------------------------- Cookies and CSRF (RFC 6749 §10.12, RFC 9700 §4.7, ASVS V3)
  {
    id: 'CK-01',
    title: 'a stolen refresh cookie replayed from a foreign Origin is refused and not rotated',
    source: 'RFC 9700 §4.7; RFC 6749 §10.12; ASVS 5.0 V3.5.1',
    async run (ctx, t) {
      const a = await ctx.signup('stolen-cookie')
      const web = await ctx.webLogin(a.email)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: cookieHeaders(web.cookieName, web.cookie, { origin: EVIL_ORIGIN, 'x-requested-with': 'x' }),
        payload: { grant_type: 'refresh_token', client_id: 'web' },
      })
      t.equal(response.statusCode, 403)
      t.equal(response.headers['access-control-allow-origin'], undefined, 'no CORS grant to the foreign origin')
      const fine = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: cookieHeaders(web.cookieName, web.cookie, { origin: SPA_ORIGIN, 'x-requested-with': 'x' }),
        payload: { grant_type: 'refresh_token', client_id: 'web' },
      })
      t.equal(fine.statusCode, 200, 'the cookie was not rotated by the refused request')
    },
  },
  {
    id: 'CK-02',
    title: 'CSRF: a cookie request without X-Requested-With, without Origin, or with Origin null is refused',
    source: 'RFC 6749 §10.12; RFC 9700 §4.7; ASVS 5.0 V3.5.1, V3.5.2',
    async run (ctx, t) {
      const a = await ctx.signup('csrf')
      const web = await ctx.webLogin(a.email)
      for (const [label, headers] of [
        ['allowed Origin, no X-Requested-With', { origin: SPA_ORIGIN }],
        ['no Origin', { 'x-requested-with': 'x' }],
        ['Origin null', { origin: 'null', 'x-requested-with': 'x' }],
        ['lookalike Origin', { origin: `${SPA_ORIGIN}.evil.example`, 'x-requested-with': 'x' }],
      ] as const) {
        const refresh = await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          headers: cookieHeaders(web.cookieName, web.cookie, headers),
          payload: { grant_type: 'refresh_token', client_id: 'web' },
        })
        t.equal(refresh.statusCode, 403, `refresh, ${label}`)
        const logout = await ctx.app.inject({ method: 'POST', url: '/auth/logout', headers: cookieHeaders(web.cookieName, web.cookie, headers) })
        t.equal(logout.statusCode, 403, `logout, ${label}`)
      }
      t.notOk(await ctx.sessionRevoked(web.access_token), 'nothing revoked')
    },
  },
  {
    id: 'CK-03',
    title: 'a cross-site text/plain form POST to the cookie-authenticated logout is 415',
    source: 'RFC 9700 §4.7; RFC 6749 §10.12; CVE-2022-41919',
    async run (ctx, t) {
      const a = await ctx.signup('form-csrf')
      const web = await ctx.webLogin(a.email)
      for (const type of ['text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/logout',
          headers: cookieHeaders(web.cookieName, web.cookie, { 'content-type': type, origin: EVIL_ORIGIN }),
          payload: 'a=b',
        })
        t.ok([403, 415].includes(response.statusCode), `${type}: ${response.statusCode}`)
      }
      t.notOk(await ctx.sessionRevoked(web.access_token), 'nothing revoked')
    },
  },
  {
    id: 'CK-04',
    title: 'login CSRF: a cookie-setting login without the CSRF defence is refused',
    source: 'RFC 6749 §10.12; RFC 9700 §4.7; ASVS 5.0 V3.5.1',
    async run (ctx, t) {
      const a = await ctx.signup('login-csrf')
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { origin: EVIL_ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=password&client_id=web&username=${encodeURIComponent(a.email)}&password=${encodeURIComponent(PASSWORD)}`,
      })
      t.equal(response.statusCode, 403)
      t.equal(setCookies(response).filter((c) => /refresh_token=[^;]/.test(c)).length, 0, 'no refresh cookie set')
    },
  },
  {
    id: 'CK-05',
    title: 'the refresh cookie is HttpOnly, Secure, SameSite=Strict, Path=/auth, __Secure- prefixed',
    source: 'ASVS 5.0 V3.3.1, V3.3.2, V3.3.4; RFC 6750 §5.3',
    async run (ctx, t) {
      const a = await ctx.signup('cookie-attrs')
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { origin: SPA_ORIGIN, 'x-requested-with': 'x' },
        payload: { grant_type: 'password', username: a.email, password: PASSWORD, client_id: 'web' },
      })
      const cookie = setCookies(response).find((c) => c.includes('refresh_token='))!
      t.match(cookie, /^__Secure-refresh_token=/)
      t.match(cookie, /; HttpOnly/i)
      t.match(cookie, /; Secure/i)
      t.match(cookie, /; SameSite=Strict/i)
      t.match(cookie, /; Path=\/auth(;|$)/)
      t.notMatch(cookie, /Domain=/i, 'host-only')
      t.equal(json(response).refresh_token, undefined, 'not in the body')
      t.equal(response.headers['cache-control'], 'no-store')
    },
  },
  {
    id: 'CK-06',
    title: 'header injection through the cookie and request-id headers is not reflected',
    source: 'RFC 6265 §4.1.1; CWE-113 (header injection); CWE-117 (log injection)',
    async run (ctx, t) {
      const name = '__Secure-refresh_token'
      for (const value of ['abc%0d%0aSet-Cookie:%20evil=1', 'abc\\r\\nX-Evil: 1', 'x; Path=/; Domain=evil.example', '"abc\u0000def"']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/auth/token',
          headers: { cookie: `${name}=${value}`, origin: SPA_ORIGIN, 'x-requested-with': 'x' },
          payload: { grant_type: 'refresh_token', client_id: 'web' },
        })
        assertNo5xx(t, response, `cookie ${JSON.stringify(value).slice(0, 30)}`)
        const cookies = setCookies(response).join('\n')
        t.notMatch(cookies, /evil/i, 'nothing injected into Set-Cookie')
        t.equal(response.headers['x-evil'], undefined)
      }
      const injected = await ctx.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc def"}{"level":60' } })
      t.not(injected.headers['x-request-id'], 'abc def"}{"level":60', 'a hostile request id is replaced, not echoed')
      t.match(String(injected.headers['x-request-id']), /^[0-9a-f-]{36}$/)
    },
  },
  {
    id: 'CK-07',
    title: 'CORS: a foreign origin gets no credentialed access; the allowed origin does',
    source: 'RFC 9700 §4.7; ASVS 5.0 V3.4.2 (CORS allow-list); CWE-942',
    async run (ctx, t) {
      const foreign = await ctx.app.inject({
        method: 'OPTIONS',
        url: '/auth/token',
        headers: { origin: EVIL_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
      })
      t.equal(foreign.headers['access-control-allow-origin'], undefined, 'no allow-origin for a foreign origin')
      const allowed = await ctx.app.inject({
        method: 'OPTIONS',
        url: '/auth/token',
        headers: { origin: SPA_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-requested-with' },
      })
      t.equal(allowed.headers['access-control-allow-origin'], SPA_ORIGIN)
      t.equal(allowed.headers['access-control-allow-credentials'], 'true')
      t.not(allowed.headers['access-control-allow-origin'], '*')
    },
  },
  // ---------------------------------------------------------------- Enumeration and brute force (ASVS V6.3)
  {
    id: 'EN-01',
    title: 'user enumeration by status and body: unknown email, wrong password and disabled user answer alike',
    source: 'ASVS 5.0 V6.3.8; RFC 6749 §10.10',
    async run (ctx, t) {
      const a = await ctx.signup('enum')
      const d = await ctx.signup('enum-disabled')
      await ctx.app.db.user.update({ where: { id: d.id }, data: { disabled: true } })
      const answers = [
        await ctx.passwordGrant(`nobody-${Date.now()}@attack.test`, PASSWORD),
        await ctx.passwordGrant(a.email, 'a wrong passphrase'),
        await ctx.passwordGrant(d.email, PASSWORD),
      ]
      const shapes = answers.map((r) => JSON.stringify({ status: r.statusCode, body: r.body, cc: r.headers['cache-control'], len: r.headers['content-length'] }))
      t.equal(new Set(shapes).size, 1, `identical answers: ${shapes[0]}`)
    },
  },
  {
    id: 'EN-02',
    title: 'user enumeration by time: unknown email costs a bcrypt compare like a wrong password',
    source: 'ASVS 5.0 V6.3.8; DESIGN §3.4',
    async run (ctx, t) {
      // bcrypt cost 10 (≈ 50 ms) makes a missing compare stand out against database noise.
      const slow = await buildTestApp({ BCRYPT_COST: '10' }, { database: ctx.database })
      try {
        const email = uniqueEmail('timing')
        const signup = await slow.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
        t.equal(signup.statusCode, 201)
        const time = async (username: string) => {
          const started = process.hrtime.bigint()
          const response = await ctx.passwordGrant(username, 'a wrong passphrase', {}, slow.app)
          t.equal(response.statusCode, 400)
          return Number(process.hrtime.bigint() - started) / 1e6
        }
        const unknown: number[] = []
        const wrong: number[] = []
        for (let i = 0; i < 9; i++) {
          unknown.push(await time(`nobody-${i}-${Date.now()}@attack.test`))
          wrong.push(await time(email))
        }
        const ratio = median(unknown) / median(wrong)
        // Without the dummy compare the ratio is about 0.05 (a database miss against a 50 ms bcrypt); the band is wide for a loaded machine.
        t.ok(ratio > 0.4 && ratio < 2.5, `median unknown ${median(unknown).toFixed(1)} ms vs wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`)
      } finally {
        await slow.close()
      }
    },
  },
  {
    id: 'EN-03',
    title: 'brute force: the password grant is rate-limited per IP with 429 and Retry-After',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10; RFC 9700 §4.14',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const a = await ctx.signup('bf-ip')
        const statuses: number[] = []
        for (let i = 0; i < 6; i++) {
          statuses.push((await ctx.passwordGrant(uniqueEmail(`bf-${i}`), 'guess number one', {}, limited.app, '203.0.113.7')).statusCode)
        }
        t.same(statuses.slice(0, 3), [400, 400, 400], 'the first three guesses are answered')
        t.same(statuses.slice(3), [429, 429, 429], 'then 429')
        const blocked = await ctx.passwordGrant(a.email, PASSWORD, {}, limited.app, '203.0.113.7')
        t.equal(blocked.statusCode, 429, 'even the right password is refused while limited (no oracle)')
        t.match(String(blocked.headers['retry-after']), /^\d+$/)
        t.equal((await ctx.passwordGrant(a.email, PASSWORD, {}, limited.app, '203.0.113.8')).statusCode, 200, 'another address is not affected')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'EN-04',
    title: 'brute force from rotating addresses and email spellings hits the per-account limit',
    source: 'ASVS 5.0 V6.3.1; RFC 6749 §10.10',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const a = await ctx.signup('bf-account')
        const spellings = [a.email, a.email.toUpperCase(), `  ${a.email}`, a.email.replace(/^./, (c) => c.toUpperCase()), a.email]
        const statuses: number[] = []
        for (const [i, spelling] of spellings.entries()) {
          statuses.push((await ctx.passwordGrant(spelling, 'guess number one', {}, limited.app, `198.51.100.${i + 1}`)).statusCode)
        }
        t.same(statuses, [400, 400, 400, 429, 429], 'one budget per account, whatever the spelling or address')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'EN-05',
    title: 'a spoofed X-Forwarded-For does not reset the per-IP limit (proxy headers not trusted by default)',
    source: 'ASVS 5.0 V6.3.1; CWE-348 (use of less trusted source)',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database })
      try {
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) {
          const response = await limited.app.inject({
            method: 'POST',
            url: '/auth/token',
            remoteAddress: '203.0.113.99',
            headers: { 'x-forwarded-for': `198.18.0.${i + 1}`, 'x-real-ip': `198.18.1.${i + 1}` },
            payload: { grant_type: 'password', username: uniqueEmail(`xff-${i}`), password: 'guess number one' },
          })
          statuses.push(response.statusCode)
        }
        t.same(statuses, [400, 400, 400, 429, 429], 'one budget for the real address')
      } finally {
        await limited.close()
      }
    },
  },
  // ---------------------------------------------------------------- Hostile input (DESIGN §4, ASVS V1, V2, V15)
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
  // ---------------------------------------------------------------- Canonical forms and storable values (security review, findings 5-7)
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
  // ---------------------------------------------------------------- API keys and privilege
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
  // ---------------------------------------------------------------- Outside review, 2026-12 (passwords, login races, audit, interop, load)
  {
    id: 'PW-01',
    title: 'a stolen access token cannot guess the password through POST /users/me/password: same budget as the grant, each failure audited',
    source: 'ASVS 5.0 V6.3.1 (brute force), V16.3.1 (authentication events logged); security review 2026-12 finding 2',
    async run (ctx, t) {
      const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: ctx.database, clock: ctx.clock })
      try {
        const victim = await ctx.signup('pw-guess')
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) {
          const response = await limited.app.inject({
            method: 'POST',
            url: '/users/me/password',
            remoteAddress: `198.51.100.${50 + i}`,
            headers: { authorization: `Bearer ${victim.access_token}` },
            payload: { currentPassword: i === 4 ? PASSWORD : `guess ${i}`, newPassword: 'the attacker now owns it' },
          })
          statuses.push(response.statusCode)
        }
        t.same(statuses, [403, 403, 403, 429, 429], 'three guesses, then 429 even for the right password')
        t.equal((await ctx.passwordGrant(victim.email, PASSWORD)).statusCode, 200, 'the password is unchanged')
        t.equal(await ctx.app.db.auditEvent.count({ where: { userId: victim.id, type: 'password_change_failed' } }), 3, 'each wrong guess audited')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'PW-02',
    title: 'a login with the old password, in flight during a password change, opens no session that outlives the change',
    source: 'ASVS 5.0 V7.4.3 (terminate sessions after a credential change); CWE-367 (TOCTOU); security review 2026-12 finding 3',
    async run (ctx, t) {
      const a = await ctx.signup('pw-race')
      const held = holdNextSessionStart(ctx.app)
      const login = ctx.passwordGrant(a.email, PASSWORD)
      await held.reached
      const change = await ctx.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: { authorization: `Bearer ${a.access_token}` },
        payload: { currentPassword: PASSWORD, newPassword: 'changed while a login was in flight' },
      })
      t.equal(change.statusCode, 204)
      held.release()
      assertInvalidGrant(t, await login, 'the in-flight login')
      t.equal(await ctx.app.db.session.count({ where: { userId: a.id, revokedAt: null } }), 1, "only the changer's session is live")
    },
  },
  {
    id: 'PW-03',
    title: 'a login in flight during a promotion to admin gets no admin token with a user\'s session lifetimes',
    source: 'OWASP Session Management Cheat Sheet (renew the session on privilege change); ASVS 5.0 V7.2.4; security review 2026-12 finding 4',
    async run (ctx, t) {
      const boss = await ctx.makeAdmin(await ctx.signup('pw-boss'))
      const a = await ctx.signup('pw-promoted')
      const held = holdNextSessionStart(ctx.app)
      const login = ctx.passwordGrant(a.email, PASSWORD)
      await held.reached
      const patch = await ctx.app.inject({ method: 'PATCH', url: `/admin/users/${a.id}`, headers: { authorization: `Bearer ${boss.access_token}` }, payload: { role: 'admin' } })
      t.equal(patch.statusCode, 200)
      held.release()
      assertInvalidGrant(t, await login, 'the in-flight login')
      t.equal(await ctx.app.db.session.count({ where: { userId: a.id, revokedAt: null } }), 0, 'no session with the old role survives')
      await ctx.app.db.user.update({ where: { id: a.id }, data: { role: 'user' } })
    },
  },
  {
    id: 'PW-04',
    title: 'audit trail: a grace-window replay and a third party revoking an API key through RFC 7009 are recorded as they happened',
    source: 'ASVS 5.0 V16.3.1, V16.3.2 (security events, with the actor); RFC 7009 §2.1; security review 2026-12 finding 8',
    async run (ctx, t) {
      const a = await ctx.signup('audit-gaps')
      const first = await ctx.refresh(a.refresh_token)
      t.equal(first.statusCode, 200)
      const replay = await ctx.refresh(a.refresh_token)
      t.equal(replay.statusCode, 200, 'answered inside the grace window')
      t.equal(await ctx.app.db.auditEvent.count({ where: { userId: a.id, type: 'refresh_token_replayed' } }), 1, 'the replay is recorded')
      const key = await ctx.createApiKey(a.access_token)
      const revoke = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', remoteAddress: '192.0.2.200', payload: { token: key.key } })
      t.equal(revoke.statusCode, 200)
      const event = await ctx.app.db.auditEvent.findFirst({ where: { userId: a.id, type: 'api_key_revoked' } })
      t.equal(event?.actorId, null, 'the owner is not named as the actor')
      t.equal(event?.ip, '192.0.2.200')
    },
  },
  {
    id: 'PW-05',
    title: 'interoperability: the Bearer scheme in any case is accepted; revoking an access token answers unsupported_token_type',
    source: 'RFC 7235 §2.1 (case-insensitive scheme); RFC 6750 §2.1; RFC 7009 §2.2.1; security review 2026-12 finding 9',
    async run (ctx, t) {
      t.equal((await ctx.me(`bearer ${ctx.victim.access_token}`)).statusCode, 200, 'lower-case bearer')
      t.equal((await ctx.me(`BEARER ${ctx.victim.access_token}`)).statusCode, 200, 'upper-case BEARER')
      const revoke = await ctx.app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: ctx.victim.access_token } })
      t.equal(revoke.statusCode, 400)
      t.equal(json(revoke).error, 'unsupported_token_type')
      t.equal((await ctx.bearer(ctx.victim.access_token)).statusCode, 200, 'the token was not revoked')
    },
  },
  {
    id: 'PW-06',
    title: 'a login flood is shed with 503 and Retry-After once the bcrypt queue is full, instead of queueing without bound',
    source: 'OWASP Denial of Service Cheat Sheet; ASVS 5.0 V2.4.1 (anti-automation); CWE-400; security review 2026-12 finding 10',
    async run (ctx, t) {
      const flooded = await buildTestApp({ BCRYPT_COST: '10', PASSWORD_QUEUE_MAX_WAIT_MS: '50' }, { database: ctx.database })
      try {
        const responses = await Promise.all(
          Array.from({ length: 40 }, (_, i) => ctx.passwordGrant(uniqueEmail(`flood-${i}`), 'guess number one', {}, flooded.app))
        )
        const shed = responses.filter((r) => r.statusCode === 503)
        t.ok(shed.length > 0, `${shed.length} of 40 shed`)
        t.ok(shed.every((r) => Number(r.headers['retry-after']) >= 1), 'each with Retry-After')
        t.ok(shed.every((r) => json(r).error === 'temporarily_unavailable'), 'RFC 6749 temporarily_unavailable')
        t.ok(responses.every((r) => r.statusCode === 503 || r.statusCode === 400), 'the rest answered as usual')
      } finally {
        await flooded.close()
      }
    },
  },
  // ---------------------------------------------------------------- response headers and resource limits
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
  // ---------------------------------------------------------------- Account recovery and email (DESIGN §3.11)
  {
    id: 'RC-01',
    title: 'a reset request answers alike for an existing, disabled, unknown or malformed address, and only the existing one gets mail',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": consistent message); ASVS 5.0 V6.3.8',
    async run (ctx, t) {
      const real = await ctx.signup('rc-real')
      const disabled = await ctx.signup('rc-disabled')
      await ctx.app.db.user.update({ where: { id: disabled.id }, data: { disabled: true } })
      const unknown = uniqueEmail('rc-nobody')
      const answers = []
      for (const email of [real.email, disabled.email, unknown, 'two@@signs.test', `  ${real.email.toUpperCase()}  `]) {
        answers.push(await requestReset(ctx, email))
      }
      t.same(new Set(answers.map((a) => `${a.statusCode} ${a.body}`)).size, 1, `one answer: ${answers[0]!.statusCode} ${answers[0]!.body}`)
      await ctx.app.recovery.settled()
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: real.email, template: 'password_reset' } }), 2, 'the real account: one message per request')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: { in: [disabled.email, unknown] }, template: 'password_reset' } }), 0, 'the others: nothing')
    },
  },
  {
    id: 'RC-02',
    title: 'a reset request takes the same time for an existing and an unknown address (answered before the lookup)',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": consistent time); ASVS 5.0 V6.3.8',
    async run (ctx, t) {
      const real = await ctx.signup('rc-timing')
      const time = async (email: string) => {
        const started = process.hrtime.bigint()
        t.equal((await requestReset(ctx, email)).statusCode, 202)
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        await ctx.app.recovery.settled()
        return ms
      }
      const known: number[] = []
      const unknown: number[] = []
      for (let i = 0; i < 9; i++) {
        known.push(await time(real.email))
        unknown.push(await time(uniqueEmail(`rc-timing-${i}`)))
      }
      const ratio = median(unknown) / median(known)
      t.ok(ratio > 0.4 && ratio < 2.5, `median unknown ${median(unknown).toFixed(2)} ms vs existing ${median(known).toFixed(2)} ms (ratio ${ratio.toFixed(2)})`)
    },
  },
  {
    id: 'RC-03',
    title: 'the reset secret: 256 random bits, a keyed hash at rest, encrypted in the outbox, single use, short-lived, superseded by a new request',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens"); ASVS 5.0 V6.4.1; ASVS 5.0 V11.2.1',
    async run (ctx, t) {
      const user = await ctx.signup('rc-secret')
      await requestReset(ctx, user.email)
      const first = await mailedToken(ctx, user.email, 'password_reset')
      t.equal(Buffer.from(first, 'base64url').length, 32, '256 bits')
      const row = await ctx.app.db.accountToken.findFirstOrThrow({ where: { userId: user.id, purpose: 'password_reset' } })
      t.notOk(Buffer.from(row.tokenHash).equals(Buffer.from(first, 'base64url')), 'stored as a hash, not the secret')
      const outbox = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: user.email, template: 'password_reset' } })
      t.notOk(JSON.stringify(outbox).includes(first), 'the outbox row holds it only encrypted')
      await requestReset(ctx, user.email)
      const second = await mailedToken(ctx, user.email, 'password_reset')
      t.equal(json(await confirmReset(ctx, first)).code, 'invalid_link_token', 'the older link died with the new request')
      await ctx.advance(ctx.config.email.passwordResetTtlSeconds + 1)
      try {
        t.match(json(await confirmReset(ctx, second)), { code: 'invalid_link_token', message: /expired/ }, 'expired after PASSWORD_RESET_TTL_SECONDS')
      } finally {
        await ctx.advance(-(ctx.config.email.passwordResetTtlSeconds + 1))
      }
      t.equal((await confirmReset(ctx, second)).statusCode, 204, 'inside its lifetime it works')
      t.equal(json(await confirmReset(ctx, second, 'another new passphrase')).code, 'invalid_link_token', 'once')
    },
  },
  {
    id: 'RC-04',
    title: '20 concurrent confirmations of one reset link: exactly one sets a password',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens": single use); CWE-367 (TOCTOU race)',
    async run (ctx, t) {
      const user = await ctx.signup('rc-race')
      await requestReset(ctx, user.email)
      const token = await mailedToken(ctx, user.email, 'password_reset')
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => confirmReset(ctx, token, `racing passphrase ${i}`)))
      t.equal(answers.filter((a) => a.statusCode === 204).length, 1, 'one 204')
      t.ok(answers.every((a) => a.statusCode === 204 || json(a).code === 'invalid_link_token'), 'the rest invalid_link_token')
    },
  },
  {
    id: 'RC-05',
    title: 'a completed reset ends every session of the account (refresh and access tokens) and notifies the address',
    source: 'OWASP Forgot Password Cheat Sheet ("Changing The Password": invalidate sessions, notify); ASVS 5.0 V6.3.7, V7.4.3',
    async run (ctx, t) {
      const user = await ctx.signup('rc-sessions')
      const other = await ctx.login(user.email)
      await requestReset(ctx, user.email)
      t.equal((await confirmReset(ctx, await mailedToken(ctx, user.email, 'password_reset'))).statusCode, 204)
      assertInvalidGrant(t, await ctx.refresh(user.refresh_token), 'the sign-up session')
      assertInvalidGrant(t, await ctx.refresh(other.refresh_token), 'another session')
      await ctx.app.revocations.sync()
      assertInvalidToken(t, await ctx.bearer(other.access_token), 'its access token')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: user.email, template: 'password_changed' } }), 1, 'the notice is queued')
    },
  },
  {
    id: 'RC-06',
    title: 'reset-link poisoning: a forged Host or X-Forwarded-Host does not change where the link points; the secret rides in the fragment',
    source: 'OWASP Forgot Password Cheat Sheet ("URL Tokens": do not build the URL from the Host header); CWE-640; CWE-598',
    async run (ctx, t) {
      const user = await ctx.signup('rc-host')
      await requestReset(ctx, user.email, { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } })
      await ctx.app.recovery.settled()
      const row = await ctx.app.db.emailOutbox.findFirstOrThrow({ where: { recipient: user.email, template: 'password_reset' } })
      const text = ctx.app.outbox.render(row).text
      t.notMatch(text, /evil\.example/, 'no attacker host in the message')
      t.match(text, `${ctx.config.email.passwordResetUrl}?token=`, 'the configured page, the token inside its fragment')
    },
  },
  {
    id: 'RC-07',
    title: 'guessed, malformed, non-string and other-purpose tokens are 4xx, never 500, and spend nothing',
    source: 'ASVS 5.0 V6.4.1; OWASP Forgot Password Cheat Sheet ("URL Tokens"); DESIGN §4',
    async run (ctx, t) {
      const user = await ctx.signup('rc-garbage')
      const verification = await mailedToken(ctx, user.email, 'email_verification')
      for (const token of ['', 'A'.repeat(43), 'A'.repeat(42) + '=', '../'.repeat(15), "' OR 1=1 --" + 'x'.repeat(32), 42, null, ['a'], { $ne: null }, verification]) {
        const response = await confirmReset(ctx, token)
        assertNo5xx(t, response, `confirm with ${JSON.stringify(token).slice(0, 30)}`)
      }
      const verify = await ctx.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: 'B'.repeat(43) } })
      t.equal(json(verify).code, 'invalid_link_token', 'an unknown verification token')
      t.equal((await ctx.app.inject({ method: 'POST', url: '/auth/verify-email', payload: { token: verification } })).statusCode, 200, 'the verification link was not spent by its misuse as a reset')
    },
  },
  {
    id: 'RC-08',
    title: 'opening a link spends nothing: the API answers no GET with a token, and a weak new password leaves the link usable',
    source: 'OWASP Forgot Password Cheat Sheet ("Changing The Password"); DESIGN §3.11 (mail scanners open links)',
    async run (ctx, t) {
      const user = await ctx.signup('rc-open')
      await requestReset(ctx, user.email)
      const token = await mailedToken(ctx, user.email, 'password_reset')
      for (const url of [`/auth/password-reset/confirm?token=${token}`, `/auth/verify-email?token=${token}`, `/auth/password-reset?token=${token}`]) {
        t.equal((await ctx.app.inject({ method: 'GET', url })).statusCode, 404, `GET ${url.split('?')[0]}`)
      }
      t.equal((await ctx.app.inject({ method: 'GET', url: '/dashboard/' })).statusCode, 200, 'the page itself is static')
      t.equal(json(await confirmReset(ctx, token, 'password123')).code, 'weak_password')
      t.equal((await confirmReset(ctx, token)).statusCode, 204, 'still usable')
    },
  },
  {
    id: 'RC-09',
    title: 'email bombing: every endpoint that sends email is limited per address and per IP',
    source: 'OWASP Forgot Password Cheat Sheet ("Forgot Password Request": rate limiting); ASVS 5.0 V6.3.1; CWE-799',
    async run (ctx, t) {
      const limited = await buildTestApp({ EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '2', EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '3' }, { database: ctx.database, clock: ctx.clock })
      try {
        const victim = await ctx.signup('rc-bomb')
        const reset = (email: string, ip: string) => limited.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, remoteAddress: ip })
        const perAddress = [await reset(victim.email, '198.51.100.1'), await reset(victim.email, '198.51.100.2'), await reset(victim.email.toUpperCase(), '198.51.100.3')]
        t.same(perAddress.map((r) => r.statusCode), [202, 202, 429], 'one address from rotating IPs')
        const perIp = []
        for (let i = 0; i < 4; i++) perIp.push((await reset(uniqueEmail(`rc-spray-${i}`), '198.51.100.9')).statusCode)
        t.same(perIp, [202, 202, 202, 429], 'rotating addresses from one IP')
        const resender = await ctx.signup('rc-resend')
        const resends = []
        for (let i = 0; i < 3; i++) {
          resends.push((await limited.app.inject({ method: 'POST', url: '/auth/verify-email/resend', remoteAddress: `198.51.100.${20 + i}`, headers: { authorization: `Bearer ${resender.access_token}` } })).statusCode)
        }
        t.same(resends, [202, 202, 429], 'the verification resend draws on the same per-address budget')
      } finally {
        await limited.close()
      }
    },
  },
  {
    id: 'RC-10',
    title: 'account takeover by email change: the current password is required, the new address must confirm, the old one is told, a taken one is not revealed',
    source: 'ASVS 5.0 V6.3.7 (notify on changes of authentication details), V6.2.3 (re-authentication); OWASP Forgot Password Cheat Sheet',
    async run (ctx, t) {
      const victim = await ctx.signup('rc-takeover')
      const attacker = uniqueEmail('rc-attacker')
      const change = (newEmail: string, currentPassword: string) =>
        ctx.app.inject({ method: 'POST', url: '/users/me/email', headers: { authorization: `Bearer ${victim.access_token}` }, payload: { newEmail, currentPassword } })
      t.equal(json(await change(attacker, 'a guessed password')).code, 'invalid_credentials', 'a stolen access token alone cannot change the address')
      const taken = await ctx.signup('rc-taken')
      const answers = [await change(attacker, PASSWORD), await change(taken.email, PASSWORD)]
      t.equal(answers[0]!.body, answers[1]!.body, 'a taken address answers like a free one')
      t.equal(answers[0]!.statusCode, 202)
      await ctx.app.recovery.settled()
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: taken.email, template: 'email_change' } }), 0, 'no link to the taken address')
      t.equal(await ctx.app.db.emailOutbox.count({ where: { recipient: victim.email, template: 'email_change_requested' } }), 2, 'the current address is told of each request')
      t.equal((await ctx.app.db.user.findUniqueOrThrow({ where: { id: victim.id } })).email, victim.email, 'nothing changes before the new address confirms')
    },
  },
  {
    id: 'RC-11',
    title: 'admins never see a user\'s link: the admin reset answers without it, and where mail goes out the outbox shows no rendered message',
    source: 'ASVS 5.0 V6.4.3 (secure reset process); OWASP Forgot Password Cheat Sheet ("URL Tokens"); DESIGN §3.11',
    async run (ctx, t) {
      const admin = await ctx.signup('rc-admin')
      const withSmtp = await buildTestApp({ SMTP_URL: 'smtp://127.0.0.1:1' }, { database: ctx.database, clock: ctx.clock })
      try {
        const adminTokens = await users.makeAdmin(withSmtp.app, admin)
        const target = await ctx.signup('rc-admin-target')
        const answer = await withSmtp.app.inject({ method: 'POST', url: `/admin/users/${target.id}/password-reset`, headers: { authorization: `Bearer ${adminTokens.access_token}` } })
        t.equal(answer.statusCode, 202)
        const token = await mailedToken(ctx, target.email, 'password_reset')
        t.notOk(answer.body.includes(token), 'not in the answer')
        const list = await withSmtp.app.inject({ method: 'GET', url: `/admin/outbox?recipient=${encodeURIComponent(target.email)}`, headers: { authorization: `Bearer ${adminTokens.access_token}` } })
        t.equal(list.statusCode, 200)
        t.notOk(list.body.includes(token), 'not in the outbox list')
        t.ok(json<{ items: { rendered: unknown }[] }>(list).items.every((item) => item.rendered === null), 'no rendered message where SMTP is configured')
      } finally {
        await withSmtp.close()
      }
    },
  },
  // ---------------------------------------------------------------- Step-up and authentication levels (DESIGN §3.12)
  ...stepUpCases,
  ...totpCases,
  ...passkeyCases,
  // ---------------------------------------------------------------- Account takeover (issue 24; catalogue-takeover.ts, also run over SMTP by takeover.test.ts)
  ...takeoverCases,
]
