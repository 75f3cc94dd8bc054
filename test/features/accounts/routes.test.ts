import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { bearer, passwordGrant, PASSWORD, refresh, sidOf, signupRequest, uniqueEmail, type Tokens } from '../../helpers/users.js'

/**
 * Accounts (DESIGN §3.3, §4): sign-up, GET /users/me, password change with
 * the revocation of every other session, the 8–72 byte password rule (never
 * truncated), and the one error shape for bad input.
 */

const main = await fileTestApp()
const { app } = main

type Response = Awaited<ReturnType<TestApp['app']['inject']>>

/** Keeps the hand-built addresses below unique. */
let counter = 0

/** 72 bytes of ASCII, not a common password. */
const P72 = 'Quietly-Walking-Giraffes-Eat-Purple-Lemons-At-Dawn-0123456789-abcdefghij'
const bytes = (s: string) => Buffer.byteLength(s, 'utf8')

const passwordLogin = (email: string, password: string) => passwordGrant(app, email, { password })

/** A password login that the test asserts succeeds. */
async function login (t: Test, email: string, password = PASSWORD): Promise<Tokens & { sid: string }> {
  const response = await passwordLogin(email, password)
  t.equal(response.statusCode, 200, `login (${response.body})`)
  const body = json<Tokens>(response)
  return { ...body, sid: sidOf(body.access_token) }
}

/** A sign-up that the test asserts succeeds. */
async function newUser (t: Test, password = PASSWORD) {
  const email = uniqueEmail('user')
  const response = await signupRequest(app, { email, password })
  t.equal(response.statusCode, 201, `sign-up (${response.body})`)
  const body = json<{ user: { id: string } } & Tokens>(response)
  return { email, userId: body.user.id, tokens: body }
}

function changePassword (accessToken: string, payload: unknown) {
  return app.inject({
    method: 'POST',
    url: '/users/me/password',
    headers: bearer(accessToken),
    payload: payload as Record<string, unknown>,
  })
}

/** The one error shape of non-OAuth endpoints (§4). */
function assertError (t: Test, response: Response, status: number, code?: string | RegExp) {
  t.equal(response.statusCode, status, `${status} (${response.body})`)
  t.match(response.headers['content-type'], /^application\/json/)
  const body = json(response)
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'error shape {statusCode, error, code, message}')
  t.equal(body.statusCode, status)
  t.type(body.error, 'string')
  t.type(body.code, 'string')
  t.type(body.message, 'string')
  t.ok(String(body.message).length > 0, 'a message')
  if (code !== undefined) t.match(body.code, code)
}

t.test('GET /users/me returns the signed-in user', async (t) => {
  const { email, userId, tokens } = await newUser(t)
  const response = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) })
  t.equal(response.statusCode, 200, response.body)
  const user = json(response)
  t.same(Object.keys(user).sort(), ['createdAt', 'disabled', 'email', 'emailVerifiedAt', 'id', 'role'])
  t.equal(user.id, userId)
  t.equal(user.email, email)
  t.equal(user.role, 'user')
  t.equal(user.disabled, false)
  t.ok(!Number.isNaN(Date.parse(String(user.createdAt))))
  t.notOk(/password|hash/i.test(response.body), 'no password hash')

  const anonymous = await app.inject({ method: 'GET', url: '/users/me' })
  assertError(t, anonymous, 401, 'unauthorized')
  t.equal(anonymous.headers['www-authenticate'], 'Bearer')
})

t.test('sign-up: 201 with the user and a token response', async (t) => {
  const email = uniqueEmail('signup')
  const response = await signupRequest(app, { email, password: PASSWORD })
  t.equal(response.statusCode, 201, response.body)
  t.equal(response.headers['cache-control'], 'no-store')
  const body = json<{ user: Record<string, unknown> } & Record<string, unknown>>(response)
  t.equal(body.user.email, email)
  t.equal(body.user.role, 'user')
  t.equal(body.user.disabled, false)
  t.type(body.user.id, 'string')
  t.notOk('passwordHash' in body.user)
  t.type(body.access_token, 'string')
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, 600)
  t.type(body.refresh_token, 'string')
  const claims = JSON.parse(Buffer.from(String(body.access_token).split('.')[1]!, 'base64url').toString())
  t.equal(claims.sub, body.user.id, 'the new user is signed in')
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(String(body.access_token)) })
  t.equal(me.statusCode, 200)
  t.equal((await refresh(app, String(body.refresh_token))).statusCode, 200, 'the refresh token works')
  const stored = await app.db.user.findUniqueOrThrow({ where: { id: String(body.user.id) } })
  t.not(stored.passwordHash, PASSWORD)
  t.match(stored.passwordHash, /^\$2[aby]\$/, 'a bcrypt hash')
})

t.test('sign-up: email trimmed and lower-cased; a taken email is 409, whatever its case', async (t) => {
  const local = `Mixed.Case-${++counter}-${Date.now()}`
  const response = await signupRequest(app, { email: `  ${local}@Example.TEST \t`, password: PASSWORD })
  t.equal(response.statusCode, 201, response.body)
  const normalized = `${local.toLowerCase()}@example.test`
  t.equal(json<{ user: { email: string } }>(response).user.email, normalized)
  t.ok(await app.db.user.findUnique({ where: { email: normalized } }), 'stored trimmed and lower-cased')

  for (const email of [normalized, `${local}@Example.TEST`, normalized.toUpperCase(), ` ${normalized} `]) {
    const taken = await signupRequest(app, { email, password: 'another fine passphrase' })
    assertError(t, taken, 409, 'email_taken')
  }
  t.equal(await app.db.user.count({ where: { email: normalized } }), 1)
  t.equal((await passwordLogin(`  ${normalized.toUpperCase()} `, PASSWORD)).statusCode, 200, 'login normalizes the same way')
  t.equal((await passwordLogin(normalized, 'another fine passphrase')).statusCode, 400, 'the 409 did not change the password')
})

t.test('sign-up: weak, common and over-long passwords are 400', async (t) => {
  const cases: [string, string][] = [
    ['7 bytes', 'abcdefg'],
    ['common', 'password'],
    ['common', 'iloveyou'],
    ['common, other case', 'PassWord1'],
    ['common', '12345678'],
    ['73 bytes', `${P72}x`],
    ['74 bytes in 37 characters', 'é'.repeat(37)],
    ['75 bytes in 25 characters', '€'.repeat(25)],
  ]
  for (const [label, password] of cases) {
    const email = uniqueEmail('weak')
    const response = await signupRequest(app, { email, password })
    assertError(t, response, 400, 'weak_password')
    t.equal(await app.db.user.count({ where: { email } }), 0, `${label}: no user created`)
  }
})

t.test('a 72-byte password works, is never truncated, and its 71-byte prefix does not log in', async (t) => {
  t.equal(bytes(P72), 72)
  const { email } = await newUser(t, P72)
  await login(t, email, P72)
  const prefix = await passwordLogin(email, P72.slice(0, 71))
  t.equal(prefix.statusCode, 400, 'the 71-byte prefix is refused')
  t.equal(json(prefix).error, 'invalid_grant')
  const longer = await passwordLogin(email, `${P72}x`)
  t.equal(longer.statusCode, 400, 'the password plus a 73rd byte is refused (bcrypt would have matched)')
  t.equal(json(longer).error, 'invalid_grant')

  // Multi-byte: 36 two-byte characters are 72 bytes; 37 are too many (above).
  const accented = `${'é'.repeat(36)}`
  t.equal(bytes(accented), 72)
  const multi = await newUser(t, accented)
  await login(t, multi.email, accented)
  const multiLonger = await passwordLogin(multi.email, `${accented}é`)
  t.equal(multiLonger.statusCode, 400, 'a 74-byte password sharing its 72-byte prefix is refused')
})

t.test('POST /users/me/password: refusals change nothing', async (t) => {
  const { email, tokens } = await newUser(t)
  const wrong = await changePassword(tokens.access_token, { currentPassword: 'not the password', newPassword: 'a brand new passphrase' })
  assertError(t, wrong, 403, 'invalid_credentials')
  for (const newPassword of ['short', 'password', 'iloveyou', `${P72}x`, '€'.repeat(25)]) {
    const response = await changePassword(tokens.access_token, { currentPassword: PASSWORD, newPassword })
    assertError(t, response, 400, 'weak_password')
  }
  const extra = await changePassword(tokens.access_token, { currentPassword: PASSWORD, newPassword: 'a brand new passphrase', role: 'admin' })
  assertError(t, extra, 400)
  const missing = await changePassword(tokens.access_token, { currentPassword: PASSWORD })
  assertError(t, missing, 400)
  const anonymous = await app.inject({ method: 'POST', url: '/users/me/password', payload: { currentPassword: PASSWORD, newPassword: 'a brand new passphrase' } })
  assertError(t, anonymous, 401)

  await login(t, email, PASSWORD)
  t.equal((await passwordLogin(email, 'a brand new passphrase')).statusCode, 400, 'the password did not change')
  const user = await app.db.user.findUniqueOrThrow({ where: { email } })
  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: { not: null } } }), 0, 'no session revoked')
})

t.test('POST /users/me/password: 204, every other session revoked, this one kept', async (t) => {
  const { email, userId, tokens: signupTokens } = await newUser(t)
  const current = await login(t, email)
  const other = await login(t, email)
  const web = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' },
    payload: { grant_type: 'password', username: email, password: PASSWORD, client_id: 'web' },
  })
  t.equal(web.statusCode, 200)
  const webCookie = web.cookies.find((c) => c.name === '__Secure-refresh_token')!.value
  const webAccess = json<Tokens>(web).access_token
  const bystander = await newUser(t)

  const newPassword = 'a brand new passphrase'
  const response = await changePassword(current.access_token, { currentPassword: PASSWORD, newPassword })
  t.equal(response.statusCode, 204, response.body)
  t.equal(response.body, '')

  for (const [label, tokens] of [
    ['the sign-up session', signupTokens],
    ['another login', other],
  ] as const) {
    const refreshed = await refresh(app, tokens.refresh_token)
    t.equal(refreshed.statusCode, 400, `${label}: refresh refused`)
    t.equal(json(refreshed).error, 'invalid_grant')
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) })
    t.equal(me.statusCode, 401, `${label}: access token refused`)
    t.match(me.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  }
  const webRefresh = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { cookie: `__Secure-refresh_token=${webCookie}`, origin: 'http://spa.test', 'x-requested-with': 'XMLHttpRequest' },
    payload: { grant_type: 'refresh_token', client_id: 'web' },
  })
  t.equal(webRefresh.statusCode, 400, 'the browser session: refresh refused')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(webAccess) })).statusCode, 401, 'the browser session: access token refused')

  const sessions = await app.db.session.findMany({ where: { userId } })
  t.same(
    sessions.filter((s) => s.revokedAt === null).map((s) => s.id),
    [current.sid],
    'only the current session is live'
  )
  t.ok(sessions.filter((s) => s.id !== current.sid).every((s) => s.revokedReason === 'password_changed'))

  const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(current.access_token) })
  t.equal(me.statusCode, 200, 'the current access token keeps working')
  t.equal((await refresh(app, current.refresh_token)).statusCode, 200, 'the current refresh token keeps working')

  t.equal((await passwordLogin(email, PASSWORD)).statusCode, 400, 'the old password no longer logs in')
  await login(t, email, newPassword)
  const bystanderMe = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(bystander.tokens.access_token) })
  t.equal(bystanderMe.statusCode, 200, "another user's session is untouched")
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'password_changed' } }), 1, 'audit event')
})

t.test('POST /users/me/password to exactly 72 bytes works; 73 is refused', async (t) => {
  const { email, tokens } = await newUser(t)
  const tooLong = await changePassword(tokens.access_token, { currentPassword: PASSWORD, newPassword: `${P72}x` })
  assertError(t, tooLong, 400)
  t.equal((await passwordLogin(email, P72)).statusCode, 400, 'the 72-byte prefix was not set')
  const ok = await changePassword(tokens.access_token, { currentPassword: PASSWORD, newPassword: P72 })
  t.equal(ok.statusCode, 204, ok.body)
  await login(t, email, P72)
  t.equal((await passwordLogin(email, P72.slice(0, 71))).statusCode, 400, 'the 71-byte prefix does not log in')
  t.equal((await passwordLogin(email, `${P72}x`)).statusCode, 400, 'nor a 73-byte extension')
})

t.test('sign-up: bad input is 4xx with the one error shape, never 500', async (t) => {
  const email = uniqueEmail('bad')
  const cases: [string, { payload: string | Record<string, unknown>; headers?: Record<string, string> }, number][] = [
    ['unknown field', { payload: { email, password: PASSWORD, role: 'admin' } }, 400],
    ['unknown field __proto__', { payload: `{"email":"${email}","password":"${PASSWORD}","__proto__":{"role":"admin"}}`, headers: { 'content-type': 'application/json' } }, 400],
    ['malformed JSON', { payload: '{"email": "a@b.test", "password": ', headers: { 'content-type': 'application/json' } }, 400],
    ['not an object', { payload: '["a@b.test", "x"]', headers: { 'content-type': 'application/json' } }, 400],
    ['JSON null', { payload: 'null', headers: { 'content-type': 'application/json' } }, 400],
    ['empty JSON body', { payload: '', headers: { 'content-type': 'application/json' } }, 400],
    ['email a number', { payload: { email: 12345, password: PASSWORD } }, 400],
    ['password a boolean', { payload: { email, password: true } }, 400],
    ['password an array', { payload: { email, password: [PASSWORD] } }, 400],
    ['email an object', { payload: { email: { $ne: null }, password: PASSWORD } }, 400],
    ['missing password', { payload: { email } }, 400],
    ['missing email', { payload: { password: PASSWORD } }, 400],
    ['not an email', { payload: { email: 'not-an-email', password: PASSWORD } }, 400],
    ['email with a NUL', { payload: { email: 'a\u0000b@example.test', password: PASSWORD } }, 400],
    ['email too long', { payload: { email: `${'a'.repeat(400)}@example.test`, password: PASSWORD } }, 400],
    ['password of 10 000 characters', { payload: { email, password: 'x'.repeat(10_000) } }, 400],
    ['form body', { payload: `email=${encodeURIComponent(email)}&password=x`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
    ['text body', { payload: JSON.stringify({ email, password: PASSWORD }), headers: { 'content-type': 'text/plain' } }, 415],
    ['oversized body (> 64 KiB)', { payload: { email, password: PASSWORD, padding: 'x'.repeat(65 * 1024) } }, 413],
    ['oversized malformed body', { payload: `{"email":"${'x'.repeat(70 * 1024)}`, headers: { 'content-type': 'application/json' } }, 413],
  ]
  for (const [label, request, status] of cases) {
    const response = await app.inject({ method: 'POST', url: '/auth/signup', ...request })
    t.equal(response.statusCode, status, `${label}: ${status}`)
    assertError(t, response, status)
  }
  t.equal(await app.db.user.count({ where: { email } }), 0, 'no user was created')
})

t.test('password change: currentPassword draws on the password grant\'s budget, every failure audited', async (t) => {
  // Security review finding 2: a stolen access token guessed the password
  // through POST /users/me/password without limit and without a trace.
  const LIMIT = 3
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) }, { database: main.database })
  t.teardown(() => limited.close())
  const { email, userId, tokens } = await newUser(t)
  const guess = (password: string, ip: string) =>
    limited.app.inject({
      method: 'POST',
      url: '/users/me/password',
      remoteAddress: ip,
      headers: bearer(tokens.access_token),
      payload: { currentPassword: password, newPassword: 'a brand new passphrase' },
    })
  // Each guess from its own address: only the per-account budget can trip.
  for (let i = 0; i < LIMIT; i++) assertError(t, await guess(`wrong guess ${i}`, `10.9.0.${i + 1}`), 403, 'invalid_credentials')
  const limitedGuess = await guess(PASSWORD, '10.9.0.99')
  assertError(t, limitedGuess, 429, 'rate_limited')
  const retryAfter = Number(limitedGuess.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${String(limitedGuess.headers['retry-after'])}`)
  t.equal((await passwordLogin(email, PASSWORD)).statusCode, 200, 'the right password, refused with 429, changed nothing')

  // One budget: the password grant for the same account is refused too, from yet another address.
  const grant = await limited.app.inject({
    method: 'POST',
    url: '/auth/token',
    remoteAddress: '10.9.0.100',
    payload: { grant_type: 'password', username: email, password: PASSWORD },
  })
  t.equal(grant.statusCode, 429, 'the password grant shares the account\'s budget')

  const failures = await app.db.auditEvent.findMany({ where: { userId, type: 'password_change_failed' }, orderBy: { id: 'asc' } })
  t.equal(failures.length, LIMIT, 'one password_change_failed event per wrong guess')
  t.same(failures.map((e) => [e.actorId, e.ip, (e.details as { reason?: string }).reason]), [
    [userId, '10.9.0.1', 'wrong_password'],
    [userId, '10.9.0.2', 'wrong_password'],
    [userId, '10.9.0.3', 'wrong_password'],
  ])
})

t.test('password change: the budget is per IP too, across accounts', async (t) => {
  const LIMIT = 3
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) }, { database: main.database })
  t.teardown(() => limited.close())
  const ip = '10.9.1.1'
  const changeFrom = (remoteAddress: string, accessToken: string, currentPassword: string) =>
    limited.app.inject({
      method: 'POST',
      url: '/users/me/password',
      remoteAddress,
      headers: bearer(accessToken),
      payload: { currentPassword, newPassword: 'a brand new passphrase' },
    })
  for (let i = 0; i < LIMIT; i++) {
    assertError(t, await changeFrom(ip, (await newUser(t)).tokens.access_token, 'not it at all'), 403, 'invalid_credentials')
  }
  assertError(t, await changeFrom(ip, (await newUser(t)).tokens.access_token, PASSWORD), 429, 'rate_limited')
})

t.test('password change: a weak new password is refused and audited', async (t) => {
  const { userId, tokens } = await newUser(t)
  assertError(t, await changePassword(tokens.access_token, { currentPassword: PASSWORD, newPassword: 'short' }), 400, 'weak_password')
  const event = await app.db.auditEvent.findFirst({ where: { userId, type: 'password_change_failed' } })
  t.match(event?.details, { reason: 'weak_password' })
})

// ---------------------------------------------------------------- security review, finding 7

t.test('finding 7: an email is validated after normalisation: a fullwidth @ is a second @, refused', async (t) => {
  const tag = `fw${++counter}${Date.now()}`
  const email = `x${tag}\uFF20evil.test@example.test`
  t.equal(email.normalize('NFKC').split('@').length, 3, 'NFKC turns U+FF20 into a second @')
  const response = await signupRequest(app, { email, password: PASSWORD })
  assertError(t, response, 400, 'invalid_email')
  t.equal(await app.db.user.count({ where: { email: { contains: tag } } }), 0, 'no address with two @ was stored')
  const login = await passwordLogin(email, PASSWORD)
  t.equal(login.statusCode, 400, 'logging in with it: 400')
  t.equal(json(login).error, 'invalid_grant', 'the same invalid_grant as a wrong password')
})

t.test('finding 7: the length limits of RFC 5321 count the normalised address', async (t) => {
  const expanding = '\uFDFA'.repeat(60)
  t.ok(expanding.normalize('NFKC').length > 1000, 'U+FDFA expands 18-fold under NFKC')
  assertError(t, await signupRequest(app, { email: `${expanding}@example.test`, password: PASSWORD }), 400, 'invalid_email')
  // One ligature that NFKC expands beyond the local part's 64 octets, without any space.
  const ligatures = '\uFB03'.repeat(22) // "ﬃ" → "ffi": 22 characters, 66 octets once normalised
  assertError(t, await signupRequest(app, { email: `${ligatures}@example.test`, password: PASSWORD }), 400, 'invalid_email')
  const local64 = `${'b'.repeat(50)}${++counter}`.padEnd(64, 'c')
  const ok64 = await signupRequest(app, { email: `${local64}@example.test`, password: PASSWORD })
  t.equal(ok64.statusCode, 201, `a 64-octet local part is fine (${ok64.body})`)
  assertError(t, await signupRequest(app, { email: `${local64}d@example.test`, password: PASSWORD }), 400, 'invalid_email')
  const label = 'd'.repeat(63)
  const domain = `${label}.${label}.${label}.${'e'.repeat(50)}.test` // 250 octets
  const long = `u${++counter}`.padEnd(254 - 1 - domain.length, 'u')
  t.equal(Buffer.byteLength(`${long}@${domain}`), 254, 'a 254-octet address')
  t.equal((await signupRequest(app, { email: `${long}@${domain}`, password: PASSWORD })).statusCode, 201, 'a 254-octet address is fine')
  assertError(t, await signupRequest(app, { email: `${long}u@${domain}`, password: PASSWORD }), 400, 'invalid_email')
})

t.test('finding 7: invisible and control characters are refused, so no account has a visual twin', async (t) => {
  const { email } = await newUser(t)
  const [local, domain] = email.split('@') as [string, string]
  const twins: [string, string][] = [
    ['zero-width space', `${local.slice(0, 3)}\u200B${local.slice(3)}@${domain}`],
    ['zero-width joiner', `${local}\u200D@${domain}`],
    ['word joiner', `${local}@\u2060${domain}`],
    ['left-to-right mark', `\u200E${local}@${domain}`],
    ['byte order mark inside', `${local}\uFEFF@${domain}`],
    ['soft hyphen', `${local.slice(0, 2)}\u00AD${local.slice(2)}@${domain}`],
    ['right-to-left override', `${local}\u202E@${domain}`],
    ['invisible times', `${local}\u2062@${domain}`],
    ['a C1 control', `${local}\u0085@${domain}`],
    ['a tab inside', `${local}\t@${domain}`],
    ['an inner space', `${local} @${domain}`],
  ]
  for (const [label, twin] of twins) {
    assertError(t, await signupRequest(app, { email: twin, password: PASSWORD }), 400, 'invalid_email')
    const login = await passwordLogin(twin, PASSWORD)
    t.equal(login.statusCode, 400, `${label}: login 400`)
    t.equal(json(login).error, 'invalid_grant', `${label}: invalid_grant, as for a wrong password`)
  }
  t.equal(await app.db.user.count({ where: { email: { contains: local.slice(3) } } }), 1, 'no twin account exists')
  t.equal((await passwordLogin(` ${email.toUpperCase()}\t`, PASSWORD)).statusCode, 200, 'surrounding whitespace and case still fold')
})

t.test('finding 7: the token endpoint answers invalid_grant, never 500, for addresses the database cannot hold', async (t) => {
  for (const username of [`${'\uFDFA'.repeat(17)}@example.test`, 'a@b@example.test', 'a\uFF20b@example.test', '@example.test', 'x@', 'a..b@example.test']) {
    const login = await passwordLogin(username, PASSWORD)
    t.equal(login.statusCode, 400, `${JSON.stringify(username).slice(0, 30)}: 400 (${login.body.slice(0, 120)})`)
    t.equal(json(login).error, 'invalid_grant', 'the answer of a wrong password: nothing to tell accounts apart by')
  }
  // U+0000 is refused in every text parameter by the schema layer (no text column can hold it).
  for (const username of ['a\u0000b@example.test', '\u0000']) {
    const login = await passwordLogin(username, PASSWORD)
    t.equal(login.statusCode, 400, `${JSON.stringify(username)}: 400 (${login.body.slice(0, 120)})`)
    t.equal(json(login).error, 'invalid_request')
  }
})
