import { randomBytes } from 'node:crypto'
import { json } from '../helpers/app.js'
import { assertInvalidGrant, assertInvalidToken } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, SPA_ORIGIN, type Tokens } from './context.js'

/**
 * Refresh tokens (RFC 6749 §10.4, RFC 9700 §4.14): replay, rotation races,
 * cross-client use, revocation and session expiry.
 */

export const refreshTokenCases: AttackCase[] = [
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
]
