import t, { type Test } from 'tap'
import { appsOn, buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { connectRedis, REDIS_URL } from '../../helpers/redis.js'
import { MFA_OTP, advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, stepAt, totpCode } from '../../helpers/totp.js'
import { claimsOf, injectAs, me, passwordGrant, signup, type Account } from '../../helpers/users.js'

/**
 * The second step of a login (DESIGN §3.12): the password grant answers
 * mfa_required for an account with a TOTP factor, and the mfa-otp grant
 * finishes the login with a code the test computes from the secret, or a
 * recovery code. Single use of codes and of the mfa_token, the drift window,
 * the wrong-code budget, clients and transports.
 */

const main = await fileTestApp()
const { app, clock } = main
const appOn = appsOn(main.database)

const CSRF = { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' }

async function enrolledUser (target: TestApp, label = 'mfa'): Promise<Account & { secret: string; recoveryCodes: string[] }> {
  const user = await signup(target.app, { label })
  await centreStep(target)
  const enrolled = await enrolTotp(target.app, user.access_token, target.clock.now())
  // The confirmation spent this step's code: later codes must be of later steps.
  await advance(target, 30)
  return { ...user, ...enrolled }
}

function assertInvalidGrant (t: Test, response: Awaited<ReturnType<typeof passwordGrant>>, description?: RegExp) {
  t.equal(response.statusCode, 400, response.body)
  t.equal(json(response).error, 'invalid_grant')
  if (description) t.match(json(response).error_description, description)
}

t.test('discovery metadata advertises the mfa-otp grant', async (t) => {
  const response = await app.inject({ url: '/.well-known/oauth-authorization-server' })
  t.ok((json<{ grant_types_supported: string[] }>(response).grant_types_supported).includes(MFA_OTP))
})

t.test('a user without a factor signs in with the password alone', async (t) => {
  const user = await signup(app, { label: 'plain' })
  const response = await passwordGrant(app, user.email)
  t.equal(response.statusCode, 200)
  t.same(claimsOf(json<{ access_token: string }>(response).access_token).amr, ['pwd'])
})

t.test('password then TOTP code: mfa_required, then a session whose tokens say pwd+otp+mfa and the acr', async (t) => {
  const user = await enrolledUser(main)
  const first = await passwordGrant(app, user.email, { clientId: 'mobile' })
  t.equal(first.statusCode, 400)
  t.equal(first.headers['cache-control'], 'no-store')
  const body = json<{ error: string; error_description: string; mfa_token: string; factors: string[] }>(first)
  t.equal(body.error, 'mfa_required')
  t.type(body.error_description, 'string')
  t.match(body.mfa_token, /^mfa_[A-Za-z0-9_-]{43}$/, 'opaque, 256 bits, base64url, recognisable')
  t.same(body.factors, ['otp', 'recovery_code'])
  t.equal(await app.db.session.count({ where: { userId: user.id, NOT: { id: user.sessionId } } }), 0, 'no session yet')

  await centreStep(main)
  const second = await mfaOtpGrant(app, body.mfa_token, { otp: totpCode(user.secret, clock.now()) }, { clientId: 'mobile' })
  t.equal(second.statusCode, 200, second.body)
  const tokens = json<{ access_token: string; refresh_token: string }>(second)
  t.type(tokens.refresh_token, 'string', 'body transport: refresh token in the body')
  const claims = claimsOf(tokens.access_token)
  t.same(claims.amr, ['mfa', 'otp', 'pwd'])
  t.equal(claims.acr, 'urn:token-auth:acr:mfa')
  t.ok(Math.abs((claims.auth_time as number) - clock.now() / 1000) < 5, 'auth_time is now')
  t.equal((await me(app, tokens.access_token)).statusCode, 200)

  const events = await app.db.auditEvent.findMany({ where: { userId: user.id, type: { in: ['login_mfa_required', 'login_succeeded'] } }, orderBy: { id: 'asc' } })
  t.same(events.map((e) => e.type), ['login_mfa_required', 'login_succeeded'])
})

t.test('form-encoded second step, as RFC 6749 clients send it', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  await centreStep(main)
  const response = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: MFA_OTP, mfa_token: token, otp: totpCode(user.secret, clock.now()) }).toString(),
  })
  t.equal(response.statusCode, 200, response.body)
})

t.test('the same code is refused a second time, within its window', async (t) => {
  const user = await enrolledUser(main)
  await centreStep(main)
  const code = totpCode(user.secret, clock.now())
  t.equal((await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: code })).statusCode, 200)
  assertInvalidGrant(t, await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: code }), /wrong or was already used/)
  // An older step's code, still inside the window, is refused too: only newer steps count.
  assertInvalidGrant(t, await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: totpCode(user.secret, clock.now(), -1) }))
  const failures = await app.db.auditEvent.count({ where: { userId: user.id, type: 'second_factor_failed' } })
  t.equal(failures, 2, 'every refusal is audited')
})

t.test('two concurrent presentations of one code: exactly one wins', async (t) => {
  const user = await enrolledUser(main)
  await centreStep(main)
  const code = totpCode(user.secret, clock.now())
  const tokens = await Promise.all(Array.from({ length: 5 }, () => mfaToken(app, user.email)))
  const answers = await Promise.all(tokens.map((token) => mfaOtpGrant(app, token, { otp: code })))
  t.same(answers.map((a) => a.statusCode).sort(), [200, 400, 400, 400, 400])
})

t.test('clock drift: codes one step away are accepted, two steps away refused', async (t) => {
  const target = await appOn(t)
  const user = await enrolledUser(target)
  await centreStep(target)
  const now = target.clock.now()
  // Refused first: a refused code spends nothing, and accepted ones must go oldest first.
  for (const offset of [-2, 2]) {
    assertInvalidGrant(t, await mfaOtpGrant(target.app, await mfaToken(target.app, user.email), { otp: totpCode(user.secret, now, offset) }))
  }
  for (const offset of [-1, 0, 1]) {
    const response = await mfaOtpGrant(target.app, await mfaToken(target.app, user.email), { otp: totpCode(user.secret, now, offset) })
    t.equal(response.statusCode, 200, `offset ${offset}: ${response.body}`)
  }
  const row = await target.app.db.totpFactor.findUniqueOrThrow({ where: { userId: user.id } })
  t.equal(row.lastUsedStep, stepAt(now) + 1, 'the newest accepted step is recorded')
})

t.test('recovery codes: each works once; 20 concurrent presentations of one code, exactly one succeeds', async (t) => {
  const user = await enrolledUser(main)
  t.equal(user.recoveryCodes.length, 10)
  const [first, second] = user.recoveryCodes as [string, string]
  const tokens = await Promise.all(Array.from({ length: 20 }, () => mfaToken(app, user.email)))
  const answers = await Promise.all(tokens.map((token) => mfaOtpGrant(app, token, { recovery_code: first })))
  const statuses = answers.map((a) => a.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 1, 'one login')
  t.equal(statuses.filter((s) => s === 400).length, 19, 'every other one refused')
  const winner = json<{ access_token: string }>(answers.find((a) => a.statusCode === 200)!)
  t.same(claimsOf(winner.access_token).amr, ['mfa', 'otp', 'pwd'], 'a recovery code is a one-time password too')
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 9)

  // Typed loosely: lower case, no hyphens.
  const loose = second.toLowerCase().replaceAll('-', '')
  t.equal((await mfaOtpGrant(app, await mfaToken(app, user.email), { recovery_code: loose })).statusCode, 200)
  assertInvalidGrant(t, await mfaOtpGrant(app, await mfaToken(app, user.email), { recovery_code: second }))
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'recovery_code_used' } }), 2)
})

t.test('the mfa_token is single use, even under concurrency', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  const [a, b] = user.recoveryCodes as [string, string]
  const answers = await Promise.all([mfaOtpGrant(app, token, { recovery_code: a }), mfaOtpGrant(app, token, { recovery_code: b })])
  t.same(answers.map((r) => r.statusCode).sort(), [200, 400], 'one of two codes on one token logs in')
  assertInvalidGrant(t, answers.find((r) => r.statusCode === 400)!, /already used/)
  t.equal(await app.db.recoveryCode.count({ where: { userId: user.id } }), 9, 'the loser spent no recovery code')
  await centreStep(main)
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: totpCode(user.secret, clock.now()) }), /already used/)
})

t.test('the mfa_token is for the client that asked for it', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email, { clientId: 'mobile' })
  await centreStep(main)
  const code = totpCode(user.secret, clock.now())
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: code }, { clientId: 'web', headers: CSRF }), /another client/)
  t.equal((await mfaOtpGrant(app, token, { otp: code }, { clientId: 'mobile' })).statusCode, 200, 'the refusal did not burn it, nor the code')
})

t.test('the mfa_token is for the transport of the first step', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email, { clientId: 'mobile' })
  await centreStep(main)
  const code = totpCode(user.secret, clock.now())
  const asCookie = await mfaOtpGrant(app, token, { otp: code }, { clientId: 'mobile', headers: { ...CSRF, 'token-transport': 'cookie' } })
  assertInvalidGrant(t, asCookie, /body transport/)
  t.equal(asCookie.cookies.length, 0, 'no cookie set')
})

t.test('cookie transport: the second step sets the refresh cookie and keeps the CSRF rules', async (t) => {
  const user = await enrolledUser(main)
  const first = await passwordGrant(app, user.email, { clientId: 'web', headers: CSRF })
  t.equal(first.statusCode, 400)
  const token = json<{ mfa_token: string }>(first).mfa_token
  t.equal(first.cookies.length, 0, 'mfa_required sets no cookie')
  await centreStep(main)
  const code = totpCode(user.secret, clock.now())
  const noCsrf = await mfaOtpGrant(app, token, { otp: code }, { clientId: 'web', headers: { origin: 'http://spa.test' } })
  t.equal(noCsrf.statusCode, 403, 'no X-Requested-With: refused before anything is spent')
  const foreign = await mfaOtpGrant(app, token, { otp: code }, { clientId: 'web', headers: { ...CSRF, origin: 'http://evil.test' } })
  t.equal(foreign.statusCode, 403)
  const ok = await mfaOtpGrant(app, token, { otp: code }, { clientId: 'web', headers: CSRF })
  t.equal(ok.statusCode, 200, ok.body)
  t.notOk(json(ok).refresh_token, 'no refresh token in the body')
  t.ok(ok.cookies.find((c) => c.name === '__Secure-refresh_token'), 'the refresh cookie')
})

t.test('an expired mfa_token is refused', async (t) => {
  const target = await appOn(t)
  const user = await enrolledUser(target)
  const token = await mfaToken(target.app, user.email)
  await advance(target, 301)
  await centreStep(target)
  assertInvalidGrant(t, await mfaOtpGrant(target.app, token, { otp: totpCode(user.secret, target.clock.now()) }), /expired/)
})

t.test('wrong codes: the token survives them until the fifth, which kills it', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  await centreStep(main)
  const right = totpCode(user.secret, clock.now())
  const wrong = right === '000000' ? '000001' : '000000'
  for (let i = 1; i <= 4; i++) assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: wrong }), /wrong/)
  // Still usable after four: the right code works...on a fresh token; this one takes one more wrong code and dies.
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: wrong }), /too many wrong codes/)
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: right }), /already used/)
  t.equal((await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: right })).statusCode, 200, 'the code itself was not spent')

  const survivor = await mfaToken(app, user.email)
  assertInvalidGrant(t, await mfaOtpGrant(app, survivor, { otp: wrong }))
  t.equal((await mfaOtpGrant(app, survivor, { recovery_code: user.recoveryCodes[0]! })).statusCode, 200, 'a wrong code does not burn the token')
})

t.test('the per-user one-time-code budget (OTP_RATE_LIMIT_PER_USER) answers 429 and spends nothing', async (t) => {
  const target = await appOn(t, { OTP_RATE_LIMIT_PER_USER: '3' })
  const user = await enrolledUser(target)
  const token = await mfaToken(target.app, user.email)
  // The confirmation drew one attempt.
  for (let i = 0; i < 2; i++) assertInvalidGrant(t, await mfaOtpGrant(target.app, token, { otp: totpCode(user.secret, target.clock.now()) === '000000' ? '000001' : '000000' }))
  const limited = await mfaOtpGrant(target.app, token, { recovery_code: user.recoveryCodes[0]! })
  t.equal(limited.statusCode, 429, limited.body)
  t.ok(limited.headers['retry-after'])
  t.equal(await target.app.db.recoveryCode.count({ where: { userId: user.id } }), 10, 'the refused attempt spent no recovery code')
  const row = await target.app.db.mfaToken.findFirstOrThrow({ where: { userId: user.id } })
  t.equal(row.usedAt, null, 'nor the token')
})

t.test('malformed second steps get invalid_request', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  const cases: Record<string, unknown>[] = [
    { mfa_token: token },
    { mfa_token: token, otp: '123456', recovery_code: user.recoveryCodes[0] },
    { mfa_token: token, otp: '12345a' },
    { mfa_token: token, recovery_code: 'not a code' },
    { otp: '123456' },
  ]
  for (const extra of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: MFA_OTP, ...extra } })
    t.equal(response.statusCode, 400, JSON.stringify(extra))
    t.equal(json(response).error, 'invalid_request', JSON.stringify(extra))
  }
  assertInvalidGrant(t, await mfaOtpGrant(app, 'mfa_' + 'A'.repeat(43), { otp: '123456' }), /invalid/)
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'second_factor_failed' } }), 0, 'nothing was checked')
})

t.test('a password change between the two steps voids the login', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  await app.db.user.update({ where: { id: user.id }, data: { passwordHash: await app.passwordHasher.hash('another fine passphrase') } })
  await centreStep(main)
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: totpCode(user.secret, clock.now()) }), /account changed/)
})

t.test('a user disabled between the two steps gets no session', async (t) => {
  const user = await enrolledUser(main)
  const token = await mfaToken(app, user.email)
  await app.db.user.update({ where: { id: user.id }, data: { disabled: true } })
  await centreStep(main)
  assertInvalidGrant(t, await mfaOtpGrant(app, token, { otp: totpCode(user.secret, clock.now()) }))
  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: null, NOT: { id: user.sessionId } } }), 0)
})

t.test('a refresh keeps the session\'s authentication facts', async (t) => {
  const user = await enrolledUser(main)
  await centreStep(main)
  const login = json<{ refresh_token: string }>(await mfaOtpGrant(app, await mfaToken(app, user.email), { otp: totpCode(user.secret, clock.now()) }))
  const refreshed = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: login.refresh_token } })
  t.equal(refreshed.statusCode, 200)
  t.equal(claimsOf(json<{ access_token: string }>(refreshed).access_token).acr, 'urn:token-auth:acr:mfa')
  t.equal((await injectAs(app, json<{ access_token: string }>(refreshed).access_token, 'GET', '/users/me/mfa')).statusCode, 200)
})

const redis = await connectRedis()
t.teardown(async () => {
  await redis?.quit()
})

t.test('with REDIS_URL two instances share the one-time-code budget', { skip: redis ? false : `Redis is not reachable at ${REDIS_URL}` }, async (t) => {
  const env = { REDIS_URL, OTP_RATE_LIMIT_PER_USER: '3' }
  const a = await buildTestApp(env, { database: main.database })
  t.teardown(() => a.close())
  const b = await buildTestApp(env, { database: main.database, clock: a.clock })
  t.teardown(() => b.close())
  // A new user per run: the counters outlive the run in Redis for their 15 minutes.
  const user = await enrolledUser(a, 'shared-budget')
  const wrong = totpCode(user.secret, a.clock.now()) === '000000' ? '000001' : '000000'
  const attempt = async (instance: TestApp) => (await mfaOtpGrant(instance.app, await mfaToken(instance.app, user.email), { otp: wrong })).statusCode
  // The confirmation on a drew the first attempt.
  t.same([await attempt(b), await attempt(a), await attempt(b)], [400, 400, 429])
})
