import type { Test } from 'tap'
import { buildTestApp, json } from '../helpers/app.js'
import { holdNextSessionStart } from '../helpers/hold.js'
import { assertInvalidGrant, PASSWORD_GRANT_PATH, type SignInPath } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { PASSWORD, uniqueEmail, type AttackContext } from './context.js'

/**
 * Outside review, 2026-12: passwords, login races, audit, interop, load.
 * The login rows take a sign-in path (attack-helpers.ts), here the password
 * grant; the first-party section runs them against the challenge endpoint.
 */

/** A password sign-in through `path` to its tokens (a challenge code exchanged), answered as it ends. */
async function signIn (ctx: AttackContext, path: SignInPath, email: string) {
  return path.tokens(ctx.app, await path.password(ctx.app, email, PASSWORD))
}

/** PW-02: a login in flight while the password changes opens no session that outlives the change. */
export async function loginRacesPasswordChange (ctx: AttackContext, t: Test, path: SignInPath) {
  const a = await ctx.signup('pw-race')
  const held = path.holdAfterPasswordCheck(ctx.app)
  const login = signIn(ctx, path, a.email)
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
}

/** PW-06: a login flood past the bcrypt queue's bound is shed with 503. */
export async function floodShed (ctx: AttackContext, t: Test, path: SignInPath) {
  const flooded = await buildTestApp({ BCRYPT_COST: '10', PASSWORD_QUEUE_MAX_WAIT_MS: '50' }, { database: ctx.database })
  try {
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => path.password(flooded.app, uniqueEmail(`flood-${i}`), 'guess number one'))
    )
    const shed = responses.filter((r) => r.statusCode === 503)
    t.ok(shed.length > 0, `${shed.length} of 40 shed`)
    t.ok(shed.every((r) => Number(r.headers['retry-after']) >= 1), 'each with Retry-After')
    t.ok(shed.every((r) => json(r).error === 'temporarily_unavailable'), 'RFC 6749 temporarily_unavailable')
    t.ok(responses.every((r) => r.statusCode === 503 || r.statusCode === 400), 'the rest answered as usual')
  } finally {
    await flooded.close()
  }
}

export const passwordCases: AttackCase[] = [
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
    run: (ctx, t) => loginRacesPasswordChange(ctx, t, PASSWORD_GRANT_PATH),
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
    run: (ctx, t) => floodShed(ctx, t, PASSWORD_GRANT_PATH),
  },
]
