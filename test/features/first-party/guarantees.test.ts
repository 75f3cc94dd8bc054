import { decodeJwt } from 'jose'
import t from 'tap'
import { buildTestApp, json, type TestApp } from '../../helpers/app.js'
import { pkcePair } from '../../helpers/oauth.js'
import { injectAs, PASSWORD, signup, uniqueEmail } from '../../helpers/users.js'
import { registerPasskey, SoftAuthenticator, TEST_ORIGIN } from '../../helpers/webauthn.js'

/**
 * The password grant's guarantees on the authorization challenge endpoint
 * (issue 27), each with its test, on a service as shipped (PASSWORD_GRANT
 * disabled): the per-account and per-IP budgets, bcrypt shedding with 503,
 * REQUIRE_EMAIL_VERIFICATION, disabled users, REQUIRE_MFA_FOR_ADMINS, the
 * passkey as second factor, and the auth_session's life: single use per
 * step, short-lived, bound to client and transport.
 */

const base: TestApp = await buildTestApp({ PASSWORD_GRANT: 'disabled' })
t.teardown(() => base.close())

type Fields = Record<string, string>
const form = (fields: Fields) => new URLSearchParams(fields).toString()

function challenge (target: TestApp, fields: Fields, options: { remoteAddress?: string; headers?: Record<string, string> } = {}) {
  return target.app.inject({
    method: 'POST',
    url: '/oauth/authorize-challenge',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    payload: form(fields),
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
  })
}

function first (target: TestApp, credentials: Fields, options: { remoteAddress?: string } = {}) {
  return challenge(target, { client_id: 'mobile', response_type: 'code', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', ...credentials }, options)
}

async function exchange (target: TestApp, code: string, verifier: string) {
  return target.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ grant_type: 'authorization_code', client_id: 'mobile', code, code_verifier: verifier }),
  })
}

t.test('AUTH_RATE_LIMIT_PER_MINUTE: the per-account and the per-IP budgets hold on the challenge endpoint', async (t) => {
  const limited = await buildTestApp({ PASSWORD_GRANT: 'disabled', AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { database: base.database })
  t.teardown(() => limited.close())
  const user = await signup(limited.app, { remoteAddress: '10.1.0.1' })
  // One account from many addresses: the account's budget.
  const perAccount = []
  for (let i = 0; i < 4; i++) perAccount.push((await first(limited, { username: user.email, password: 'wrong password!' }, { remoteAddress: `10.2.0.${i + 1}` })).statusCode)
  t.same(perAccount, [400, 400, 400, 429], 'the fourth guess at one account is refused')
  // Many accounts from one address: the address's budget.
  const perIp = []
  for (let i = 0; i < 4; i++) perIp.push((await first(limited, { username: uniqueEmail('spray'), password: 'wrong password!' }, { remoteAddress: '10.3.0.1' })).statusCode)
  t.same(perIp, [400, 400, 400, 429], 'the fourth guess from one address is refused')
  const refused = await first(limited, { username: uniqueEmail('spray'), password: 'wrong password!' }, { remoteAddress: '10.3.0.1' })
  t.ok(refused.headers['retry-after'], '429 with Retry-After')
})

t.test('a flood past the bcrypt queue\'s bound is shed with 503 temporarily_unavailable', async (t) => {
  const flooded = await buildTestApp({ PASSWORD_GRANT: 'disabled', BCRYPT_COST: '10', PASSWORD_QUEUE_MAX_WAIT_MS: '50' }, { database: base.database })
  t.teardown(() => flooded.close())
  const user = await signup(flooded.app)
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => first(flooded, { username: user.email, password: PASSWORD }, { remoteAddress: `10.4.${i}.1` })))
  const shed = answers.filter((answer) => answer.statusCode === 503)
  t.ok(shed.length > 0, `${shed.length} of 60 shed`)
  t.ok(answers.some((answer) => answer.statusCode === 200), 'the admitted ones get their code')
  t.same(answers.filter((answer) => answer.statusCode !== 200 && answer.statusCode !== 503).map((answer) => answer.body), [], 'nothing else')
  t.equal(json(shed[0]!).error, 'temporarily_unavailable')
  t.ok(shed[0]!.headers['retry-after'])
})

t.test('a disabled account answers like a wrong password; REQUIRE_EMAIL_VERIFICATION refuses an unverified one', async (t) => {
  const user = await signup(base.app)
  await base.app.db.user.update({ where: { id: user.id }, data: { disabled: true } })
  const disabled = await first(base, { username: user.email, password: PASSWORD })
  const wrong = await first(base, { username: user.email, password: 'not the password' })
  t.equal(disabled.statusCode, 400)
  t.equal(disabled.body, wrong.body, 'not told apart from a wrong password')

  const strict = await buildTestApp({ PASSWORD_GRANT: 'disabled', REQUIRE_EMAIL_VERIFICATION: 'true' }, { database: base.database })
  t.teardown(() => strict.close())
  const unverified = await signup(strict.app)
  const refused = await first(strict, { username: unverified.email, password: PASSWORD })
  t.equal(refused.statusCode, 400)
  t.equal(json(refused).error, 'email_not_verified')
  const guess = await first(strict, { username: unverified.email, password: 'not the password' })
  t.equal(json(guess).error, 'invalid_grant', 'told only to whoever knows the password')
})

t.test('REQUIRE_MFA_FOR_ADMINS: an admin signed in with a password alone reaches only the enrolment routes', async (t) => {
  const strict = await buildTestApp({ PASSWORD_GRANT: 'disabled', REQUIRE_MFA_FOR_ADMINS: 'true' }, { database: base.database })
  t.teardown(() => strict.close())
  const account = await signup(strict.app)
  await strict.app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
  const pkce = pkcePair()
  const answer = await challenge(strict, { client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: account.email, password: PASSWORD })
  t.equal(answer.statusCode, 200, 'no factor yet: a code')
  const tokens = json<{ access_token: string }>(await exchange(strict, json<{ authorization_code: string }>(answer).authorization_code, pkce.verifier))
  t.equal(decodeJwt(tokens.access_token).role, 'admin')
  const adminRoute = await injectAs(strict.app, tokens.access_token, 'GET', '/admin/users')
  t.equal(adminRoute.statusCode, 401)
  t.equal(json(adminRoute).code, 'insufficient_user_authentication')
  const enrol = await injectAs(strict.app, tokens.access_token, 'POST', '/users/me/mfa/totp')
  t.equal(enrol.statusCode, 200, 'enrolling a factor is allowed')
})

t.test('a passkey is a second factor here too: the auth_session\'s options, then the assertion, and amr says so', async (t) => {
  const user = await signup(base.app)
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(base.app, user.access_token, authenticator)
  const pkce = pkcePair()
  const step = await challenge(base, { client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD })
  t.equal(step.statusCode, 403)
  const { auth_session: authSession, factors } = json<{ auth_session: string; factors: string[] }>(step)
  t.ok(factors.includes('passkey'))
  const options = json<{ challenge: string; rpId: string }>(await base.app.inject({ method: 'POST', url: '/auth/mfa/passkey-options', payload: { mfa_token: authSession } }))
  const assertion = authenticator.get(options)
  const done = await base.app.inject({ method: 'POST', url: '/oauth/authorize-challenge', payload: { client_id: 'mobile', auth_session: authSession, credential: assertion } })
  t.equal(done.statusCode, 200)
  const tokens = json<{ access_token: string }>(await exchange(base, json<{ authorization_code: string }>(done).authorization_code, pkce.verifier))
  const amr = decodeJwt(tokens.access_token).amr as string[]
  t.ok(amr.includes('pwd') && amr.includes('mfa'), `pwd and mfa (${amr.join(' ')})`)
  const session = await base.app.db.session.findFirst({ where: { userId: user.id, clientId: 'mobile', revokedAt: null }, orderBy: { createdAt: 'desc' } })
  t.ok(session?.passkeyId, 'the session names the passkey: deleting it ends the session')

  // A passkey as the first factor.
  const signIn = json<{ challenge: string; rpId: string }>(await base.app.inject({ method: 'POST', url: '/auth/passkey/options' }))
  const firstFactor = await base.app.inject({
    method: 'POST',
    url: '/oauth/authorize-challenge',
    payload: { client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', credential: authenticator.get(signIn) },
  })
  t.equal(firstFactor.statusCode, 200, 'a passkey alone signs in')
})

t.test('the auth_session: single use per step, expires, bound to its transport', async (t) => {
  const user = await signup(base.app)
  const pkce = pkcePair()
  const authenticator = new SoftAuthenticator(TEST_ORIGIN)
  await registerPasskey(base.app, user.access_token, authenticator)
  const step = json<{ auth_session: string }>(await challenge(base, { client_id: 'mobile', response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', username: user.email, password: PASSWORD }))
  const cookieTransport = await challenge(base, { client_id: 'mobile', auth_session: step.auth_session, recovery_code: 'AAAA-BBBB-CCCC' }, { headers: { 'token-transport': 'cookie', origin: 'http://spa.test', 'x-requested-with': 'fetch' } })
  t.equal(json(cookieTransport).error, 'invalid_session', 'another transport cannot use it')
  base.clock.advance(301)
  const expired = await challenge(base, { client_id: 'mobile', auth_session: step.auth_session, recovery_code: 'AAAA-BBBB-CCCC' })
  t.equal(json(expired).error, 'invalid_session', 'five minutes, then gone')
  const garbage = await challenge(base, { client_id: 'mobile', auth_session: 'mfa_nothing', otp: '123456' })
  t.equal(json(garbage).error, 'invalid_session')
})
