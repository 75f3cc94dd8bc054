import type { Test } from 'tap'
import { buildTestApp, json, type TestApp } from '../helpers/app.js'
import { advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, totpCode, type Enrolled } from '../helpers/totp.js'
import * as users from '../helpers/users.js'
import type { AttackCase } from './catalogue.js'
import type { AttackContext } from './context.js'
import { assertInvalidGrant, PASSWORD_GRANT_PATH, signInTokens, type SignInPath } from './attack-helpers.js'

/**
 * Attacks on TOTP, recovery codes and the second step of a login (DESIGN
 * §3.12): replays, drift, guessing, tokens carried to another client or
 * transport, a stolen access token removing the factor, admins without a
 * second factor, and tampering with the stored secret.
 */

const CSRF = { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' }

type Target = Pick<TestApp, 'app' | 'clock'>

/** A user with a confirmed TOTP factor, the clock moved past the step the confirmation spent. */
export async function enrolled (target: Target, label: string): Promise<users.Account & Enrolled> {
  const user = await users.signup(target.app, { label })
  await centreStep(target)
  const factor = await enrolTotp(target.app, user.access_token, target.clock.now())
  await advance(target, 30)
  return { ...user, ...factor }
}

const wrongCode = (secret: string, now: number) => (totpCode(secret, now) === '000000' ? '000001' : '000000')

/*
 * The rows on a login's second step take a sign-in path (attack-helpers.ts):
 * here the password grant's mfa_required and the mfa-otp grant; the
 * first-party section runs the same functions against the authorization
 * challenge endpoint (insufficient_authorization, then the auth_session).
 */

/** TOTP-01: an accepted code is refused again in its window, and so is an older step's. */
export async function totpReplay (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await enrolled(ctx, 'totp-replay')
  await centreStep(ctx)
  const code = totpCode(user.secret, ctx.clock.now())
  t.equal((await path.secondStep(ctx.app, await path.secondStepToken(ctx.app, user.email), { otp: code })).statusCode, 200, 'first use')
  assertInvalidGrant(t, await path.secondStep(ctx.app, await path.secondStepToken(ctx.app, user.email), { otp: code }), 'replay')
  assertInvalidGrant(t, await path.secondStep(ctx.app, await path.secondStepToken(ctx.app, user.email), { otp: totpCode(user.secret, ctx.clock.now(), -1) }), 'the previous step')
}

/** TOTP-02: codes two or more steps away are refused. */
export async function totpDrift (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await enrolled(ctx, 'totp-drift')
  await centreStep(ctx)
  for (const offset of [-2, 2, 3, -10]) {
    assertInvalidGrant(t, await path.secondStep(ctx.app, await path.secondStepToken(ctx.app, user.email), { otp: totpCode(user.secret, ctx.clock.now(), offset) }), `offset ${offset}`)
  }
}

/** TOTP-03: a second-step token dies after five wrong codes; a per-user budget holds across tokens. */
export async function totpGuessing (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await enrolled(ctx, 'totp-guess')
  const token = await path.secondStepToken(ctx.app, user.email)
  const wrong = wrongCode(user.secret, ctx.clock.now())
  for (let i = 0; i < 5; i++) assertInvalidGrant(t, await path.secondStep(ctx.app, token, { otp: wrong }), `wrong code ${i + 1}`)
  path.assertStepTokenRefused(t, await path.secondStep(ctx.app, token, { otp: totpCode(user.secret, ctx.clock.now()) }), 'the right code on a dead token')
  const limited = await buildTestApp({ OTP_RATE_LIMIT_PER_USER: '4' }, { database: ctx.database, clock: ctx.clock })
  try {
    const other = await enrolled(limited, 'totp-budget')
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await path.secondStep(limited.app, await path.secondStepToken(limited.app, other.email), { otp: wrongCode(other.secret, ctx.clock.now()) })).statusCode)
    t.same(statuses, [400, 400, 400, 429], 'fresh tokens do not reset the per-user budget (the confirmation drew one)')
  } finally {
    await limited.close()
  }
}

/** TOTP-04: one recovery code, 20 concurrent second steps: one succeeds. */
export async function recoveryCodeRace (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await enrolled(ctx, 'totp-recovery')
  const tokens = await Promise.all(Array.from({ length: 20 }, () => path.secondStepToken(ctx.app, user.email)))
  const answers = await Promise.all(tokens.map((token) => path.secondStep(ctx.app, token, { recovery_code: user.recoveryCodes[0]! })))
  t.equal(answers.filter((a) => a.statusCode === 200).length, 1, 'one login')
  t.equal(await ctx.app.db.recoveryCode.count({ where: { userId: user.id } }), 9, 'one code spent')
}

/** TOTP-05: the second-step token is single use, lives 5 minutes, and serves only its client. */
export async function stepTokenLife (ctx: AttackContext, t: Test, path: SignInPath) {
  const user = await enrolled(ctx, 'totp-token')
  const token = await path.secondStepToken(ctx.app, user.email, { clientId: 'mobile' })
  await centreStep(ctx)
  path.assertStepTokenRefused(t, await path.secondStep(ctx.app, token, { otp: totpCode(user.secret, ctx.clock.now()) }, { clientId: 'web', headers: CSRF }), 'another client')
  t.equal((await path.secondStep(ctx.app, token, { recovery_code: user.recoveryCodes[0]! }, { clientId: 'mobile' })).statusCode, 200, 'its own client')
  path.assertStepTokenRefused(t, await path.secondStep(ctx.app, token, { recovery_code: user.recoveryCodes[1]! }, { clientId: 'mobile' }), 'reuse')
  const late = await path.secondStepToken(ctx.app, user.email, { clientId: 'mobile' })
  await ctx.advance(301)
  path.assertStepTokenRefused(t, await path.secondStep(ctx.app, late, { recovery_code: user.recoveryCodes[1]! }, { clientId: 'mobile' }), 'expired')
}

/** TOTP-09: with REQUIRE_MFA_FOR_ADMINS, an admin's password-only token reaches only the enrolment routes. */
export async function adminWithoutFactor (ctx: AttackContext, t: Test, path: SignInPath) {
  const strict = await buildTestApp({ REQUIRE_MFA_FOR_ADMINS: 'true' }, { database: ctx.database })
  try {
    const account = await users.signup(strict.app, { label: 'totp-strict-admin' })
    await strict.app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
    await strict.app.revocations.sync()
    const { access_token: token } = await signInTokens(path, strict.app, account.email)
    for (const [method, url] of [['GET', '/admin/users'], ['GET', '/api-keys'], ['PATCH', `/admin/users/${account.id}`]] as const) {
      const response = await users.injectAs(strict.app, token, method, url, method === 'PATCH' ? { disabled: false } : undefined)
      t.equal(response.statusCode, 401, `${method} ${url}`)
      t.match(response.headers['www-authenticate'], /insufficient_user_authentication.*acr_values="urn:token-auth:acr:mfa"/, `${method} ${url}: RFC 9470 challenge`)
    }
    t.equal((await users.injectAs(strict.app, token, 'POST', '/users/me/mfa/totp')).statusCode, 200, 'enrolment is open')
  } finally {
    await strict.close()
  }
}

/** TOTP-10: a TOTP secret copied to another user's row accepts no code there. */
export async function copiedSecret (ctx: AttackContext, t: Test, path: SignInPath) {
  const owner = await enrolled(ctx, 'totp-aad-owner')
  const thief = await enrolled(ctx, 'totp-aad-thief')
  const stolen = await ctx.app.db.totpFactor.findUniqueOrThrow({ where: { userId: owner.id } })
  await ctx.app.db.totpFactor.update({ where: { userId: thief.id }, data: { secretEncrypted: stolen.secretEncrypted } })
  await centreStep(ctx)
  const answer = await path.secondStep(ctx.app, await path.secondStepToken(ctx.app, thief.email), { otp: totpCode(owner.secret, ctx.clock.now()) })
  assertInvalidGrant(t, answer, 'the owner\'s code on the thief\'s account')
}

export const totpCases: AttackCase[] = [
  {
    id: 'TOTP-01',
    title: 'a TOTP code that was accepted is refused when presented again inside its window, and so is an older step\'s code',
    source: 'RFC 6238 §5.2 ("the verifier MUST NOT accept the second attempt of the same OTP"); ASVS 5.0 V6.5.1',
    run: (ctx, t) => totpReplay(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-02',
    title: 'a code two time steps away (60 s of drift) is refused; one step either side is the whole window',
    source: 'RFC 6238 §5.2 (at most one time step of network delay); ASVS 5.0 V6.5.5 (TOTP lifetime)',
    run: (ctx, t) => totpDrift(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-03',
    title: 'guessing codes: an mfa_token dies after five wrong codes, and a per-user budget answers 429 across tokens',
    source: 'RFC 4226 §7.3 (throttling); RFC 6238 §5.2; ASVS 5.0 V6.3.1 (brute force)',
    run: (ctx, t) => totpGuessing(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-04',
    title: 'a recovery code works once: 20 concurrent second steps with one code, one session',
    source: 'ASVS 5.0 V6.5.1 (lookup secrets usable once); CWE-367 (check-then-use race)',
    run: (ctx, t) => recoveryCodeRace(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-05',
    title: 'the mfa_token is single use, expires in 5 minutes, and works only for the client it was issued to',
    source: 'RFC 6749 §5.2 (invalid_grant), §10.5-style single use of short-lived grants; ASVS 5.0 V6.5.5; DESIGN §3.12',
    run: (ctx, t) => stepTokenLife(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-06',
    title: 'the second step keeps the first step\'s transport, and in cookie transport the CSRF defence (no cross-site login into the attacker\'s account)',
    source: 'RFC 6749 §10.12 (CSRF); OWASP CSRF Prevention Cheat Sheet (login CSRF); DESIGN §3.6',
    async run (ctx, t) {
      const user = await enrolled(ctx, 'totp-transport')
      const bodyToken = await mfaToken(ctx.app, user.email, { clientId: 'mobile' })
      await centreStep(ctx)
      const code = totpCode(user.secret, ctx.clock.now())
      const switched = await mfaOtpGrant(ctx.app, bodyToken, { otp: code }, { clientId: 'mobile', headers: { ...CSRF, 'token-transport': 'cookie' } })
      assertInvalidGrant(t, switched, 'body token in cookie transport')
      t.equal(switched.cookies.length, 0, 'no cookie')
      const cookieToken = await mfaToken(ctx.app, user.email, { clientId: 'web', headers: CSRF })
      const crossSite = await ctx.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { origin: 'http://evil.test', 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'urn:token-auth:grant-type:mfa-otp', mfa_token: cookieToken, otp: code, client_id: 'web' }).toString(),
      })
      t.equal(crossSite.statusCode, 403, 'a cross-site form is refused')
      t.equal(crossSite.cookies.length, 0, 'and sets no cookie')
    },
  },
  {
    id: 'TOTP-07',
    title: 'for an account with a second factor the password alone opens no session: mfa_required carries no token of a session',
    source: 'ASVS 5.0 V6.3.3 (multi-factor authentication); RFC 8176 §2 (amr); DESIGN §3.12',
    async run (ctx, t) {
      const user = await enrolled(ctx, 'totp-password-only')
      const before = await ctx.app.db.session.count({ where: { userId: user.id } })
      const response = await users.passwordGrant(ctx.app, user.email)
      t.equal(response.statusCode, 400)
      const body = json(response)
      t.equal(body.error, 'mfa_required')
      t.same(Object.keys(body).sort(), ['error', 'error_description', 'factors', 'mfa_token'])
      t.equal(response.cookies.length, 0, 'no cookie')
      t.equal(await ctx.app.db.session.count({ where: { userId: user.id } }), before, 'no session')
    },
  },
  {
    id: 'TOTP-08',
    title: 'a stolen access token cannot remove the factor: removal needs a recent authentication and a current code or the password',
    source: 'ASVS 5.0 V7.5.1 (re-authentication before changing MFA configuration); ASVS 5.0 V6.5.6; RFC 9470 §3 (max_age)',
    async run (ctx, t) {
      const user = await enrolled(ctx, 'totp-remove')
      const wrongPassword = await users.injectAs(ctx.app, user.access_token, 'DELETE', '/users/me/mfa/totp', { password: 'a guessed passphrase' })
      t.equal(wrongPassword.statusCode, 403, 'wrong password')
      const wrong = await users.injectAs(ctx.app, user.access_token, 'DELETE', '/users/me/mfa/totp', { code: wrongCode(user.secret, ctx.clock.now()) })
      t.equal(wrong.statusCode, 403, 'wrong code')
      await ctx.advance(ctx.config.mfa.recentAuthMaxAgeSeconds + 1)
      const stale = await users.injectAs(ctx.app, user.access_token, 'DELETE', '/users/me/mfa/totp', { password: users.PASSWORD })
      t.equal(stale.statusCode, 401, 'an old authentication, even with the password')
      t.equal(json(stale).code, 'insufficient_user_authentication')
      t.equal(await ctx.app.db.totpFactor.count({ where: { userId: user.id } }), 1, 'the factor stays')
      t.equal(await ctx.app.db.auditEvent.count({ where: { userId: user.id, type: 'totp_removal_failed' } }), 2, 'failures audited')
    },
  },
  {
    id: 'TOTP-09',
    title: 'REQUIRE_MFA_FOR_ADMINS: an admin token without a second factor reaches only the enrolment routes',
    source: 'RFC 9470 §3 (insufficient_user_authentication, acr_values); ASVS 5.0 V6.3.3; DESIGN §3.12',
    run: (ctx, t) => adminWithoutFactor(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-10',
    title: 'a TOTP secret copied to another user\'s row does not decrypt there (bound to its user): no code is accepted, nothing fails open',
    source: 'NIST SP 800-38D §5.2.1.1 (GCM additional authenticated data); ASVS 5.0 V11.3.3 (authenticated encryption)',
    run: (ctx, t) => copiedSecret(ctx, t, PASSWORD_GRANT_PATH),
  },
  {
    id: 'TOTP-11',
    title: 'the enrolment secret and recovery codes are answered with Cache-Control: no-store',
    source: 'ASVS 5.0 V14.3.2 (no caching of sensitive data); RFC 9111 §5.2.2.5',
    async run (ctx, t) {
      const user = await ctx.signup('totp-no-store')
      const started = await users.injectAs(ctx.app, user.access_token, 'POST', '/users/me/mfa/totp')
      t.equal(started.headers['cache-control'], 'no-store', 'enrolment')
      await centreStep(ctx)
      const confirmed = await users.injectAs(ctx.app, user.access_token, 'POST', '/users/me/mfa/totp/confirm', { code: totpCode(json<{ secret: string }>(started).secret, ctx.clock.now()) })
      t.equal(confirmed.statusCode, 200)
      t.equal(confirmed.headers['cache-control'], 'no-store', 'recovery codes')
    },
  },
]
