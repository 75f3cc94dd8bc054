import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import * as users from '../../helpers/users.js'
import { bearer, me, PASSWORD, refresh, sidOf, uniqueEmail, type Tokens } from '../../helpers/users.js'

/**
 * Sessions (DESIGN §3.5 rules 5–7): logout in its three scopes, listing and
 * revoking sessions, RFC 7009 revocation, and revocation reaching access
 * tokens at once on this instance and within a second on another one.
 */

const main = await fileTestApp()
const { app, database } = main

interface Login {
  sessionId: string
  accessToken: string
  refreshToken: string
}

/** A new user, signed in by the sign-up itself (its first session). */
async function signup (): Promise<{ email: string; userId: string; signupSession: Login }> {
  const user = await users.signup(app)
  return { email: user.email, userId: user.id, signupSession: toLogin(user) }
}

function toLogin (body: Tokens): Login {
  return { sessionId: sidOf(body.access_token), accessToken: body.access_token, refreshToken: body.refresh_token }
}

/** A password login (the default client) from a device named by its User-Agent. */
async function login (email: string, userAgent = 'test-agent/1.0'): Promise<Login> {
  return toLogin(await users.login(app, email, { headers: { 'user-agent': userAgent } }))
}

/** A user with `n` sessions from password logins, besides the one the sign-up started. */
async function userWithSessions (n: number) {
  const { email, userId, signupSession } = await signup()
  const sessions: Login[] = []
  for (let i = 0; i < n; i++) sessions.push(await login(email, `device-${i}`))
  return { email, userId, signupSession, sessions }
}

async function isRevoked (sessionId: string): Promise<boolean> {
  return (await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })).revokedAt !== null
}

async function assertDead (t: Test, login: Login, label: string) {
  t.ok(await isRevoked(login.sessionId), `${label}: revoked`)
  const response = await me(app, login.accessToken)
  t.equal(response.statusCode, 401, `${label}: access token refused`)
  t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  const refreshed = await refresh(app, login.refreshToken)
  t.equal(refreshed.statusCode, 400, `${label}: refresh refused`)
  t.equal(json(refreshed).error, 'invalid_grant')
}

async function assertAlive (t: Test, login: Login, label: string): Promise<Login> {
  t.notOk(await isRevoked(login.sessionId), `${label}: not revoked`)
  t.equal((await me(app, login.accessToken)).statusCode, 200, `${label}: access token accepted`)
  const refreshed = await refresh(app, login.refreshToken)
  t.equal(refreshed.statusCode, 200, `${label}: refreshes`)
  const body = json<{ access_token: string; refresh_token: string }>(refreshed)
  return { sessionId: login.sessionId, accessToken: body.access_token, refreshToken: body.refresh_token }
}

t.test('POST /auth/logout with a Bearer token revokes the current session only', async (t) => {
  const { userId, sessions } = await userWithSessions(2)
  const [current, other] = sessions as [Login, Login]
  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(current.accessToken) })
  t.equal(response.statusCode, 204, response.body)
  t.equal(response.body, '')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: current.sessionId } })
  t.ok(session.revokedAt)
  t.equal(session.revokedReason, 'logout')
  await assertDead(t, current, 'current session')
  await assertAlive(t, other, 'other session')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'logged_out' } }), 1, 'audit event logged_out')

  const again = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(current.accessToken) })
  t.equal(again.statusCode, 401, 'a second logout with the revoked token is 401')
})

t.test('POST /auth/logout?scope=others revokes every other session, not the current one', async (t) => {
  const { sessions, signupSession } = await userWithSessions(3)
  const bystander = await userWithSessions(1)
  const [current, ...rest] = sessions as [Login, Login, Login]
  const others = [signupSession, ...rest]
  const response = await app.inject({ method: 'POST', url: '/auth/logout?scope=others', headers: bearer(current.accessToken) })
  t.equal(response.statusCode, 204, response.body)
  t.notOk(
    ([] as string[]).concat(response.headers['set-cookie'] ?? []).some((c) => /refresh_token=;/.test(c)),
    'the current session keeps its cookie'
  )
  for (const [i, other] of others.entries()) await assertDead(t, other, `other session ${i}`)
  await assertAlive(t, current, 'current session')
  await assertAlive(t, bystander.sessions[0]!, "another user's session")
})

t.test('POST /auth/logout?scope=global revokes all of the user\'s sessions', async (t) => {
  const { sessions, signupSession } = await userWithSessions(3)
  const bystander = await userWithSessions(1)
  const response = await app.inject({ method: 'POST', url: '/auth/logout?scope=global', headers: bearer(sessions[0]!.accessToken) })
  t.equal(response.statusCode, 204, response.body)
  for (const [i, session] of [signupSession, ...sessions].entries()) await assertDead(t, session, `session ${i}`)
  await assertAlive(t, bystander.sessions[0]!, "another user's session")
})

t.test('POST /auth/logout: a bad scope is 400, no credentials 401', async (t) => {
  const { sessions } = await userWithSessions(1)
  const bad = await app.inject({ method: 'POST', url: '/auth/logout?scope=everyone', headers: bearer(sessions[0]!.accessToken) })
  t.equal(bad.statusCode, 400)
  t.same(Object.keys(json(bad)).sort(), ['code', 'error', 'message', 'statusCode'])
  t.notOk(await isRevoked(sessions[0]!.sessionId), 'nothing revoked')
  const anonymous = await app.inject({ method: 'POST', url: '/auth/logout' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Bearer')
})

t.test('GET /auth/sessions lists the live sessions and marks the current one', async (t) => {
  const { sessions, signupSession } = await userWithSessions(3)
  const [current, other, gone] = sessions as [Login, Login, Login]
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(gone.accessToken) })
  const bystander = await userWithSessions(1)

  const response = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(current.accessToken) })
  t.equal(response.statusCode, 200, response.body)
  const items = json<{ items: Record<string, unknown>[] }>(response).items
  t.same(
    items.map((s) => s.id).sort(),
    [signupSession.sessionId, current.sessionId, other.sessionId].sort(),
    'the live sessions (sign-up and two logins), not the revoked one'
  )
  t.notOk(items.some((s) => s.id === bystander.sessions[0]!.sessionId), "not another user's")
  t.same(
    items.filter((s) => s.current === true).map((s) => s.id),
    [current.sessionId],
    'exactly the current session is marked current'
  )
  t.equal(items.find((s) => s.id === other.sessionId)?.current, false)
  const mine = items.find((s) => s.id === current.sessionId)!
  t.equal(mine.clientId, 'mobile')
  t.equal(mine.userAgent, 'device-0')
  t.type(mine.ip, 'string')
  for (const field of ['createdAt', 'lastRefreshedAt', 'idleExpiresAt', 'absoluteExpiresAt']) {
    t.ok(!Number.isNaN(Date.parse(String(mine[field]))), `${field} is a date`)
  }
  const text = response.body
  t.notOk(/token_?hash|refresh_?token/i.test(text), 'no token material in the listing')
  t.notOk(text.includes(current.refreshToken))

  const anonymous = await app.inject({ method: 'GET', url: '/auth/sessions' })
  t.equal(anonymous.statusCode, 401)
})

t.test('GET /auth/sessions leaves out sessions past their idle expiry', async (t) => {
  // Its own instance and clock, so moving time does not touch the other tests.
  const short = await buildTestApp({ REFRESH_IDLE_TTL_SECONDS: '100', REFRESH_ABSOLUTE_TTL_SECONDS: '1000' }, { database })
  t.teardown(short.close)
  const email = uniqueEmail('idle')
  const created = await short.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
  t.equal(created.statusCode, 201)
  const stale = toLogin(json(created))
  short.clock.advance(60)
  const loginResponse = await short.app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'password', username: email, password: PASSWORD },
  })
  const fresh = toLogin(json(loginResponse))
  short.clock.advance(50)
  // 110 s after the sign-up session was last used, 50 s after the login.
  await short.app.revocations.sync()
  const response = await short.app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(fresh.accessToken) })
  t.equal(response.statusCode, 200, response.body)
  t.same(
    json<{ items: { id: string }[] }>(response).items.map((s) => s.id),
    [fresh.sessionId],
    'only the session that can still refresh'
  )
  t.not(stale.sessionId, fresh.sessionId)
})

t.test('DELETE /auth/sessions/:id revokes one session of the user', async (t) => {
  const { sessions } = await userWithSessions(3)
  const [current, target, kept] = sessions as [Login, Login, Login]
  const bystander = await userWithSessions(1)

  const response = await app.inject({ method: 'DELETE', url: `/auth/sessions/${target.sessionId}`, headers: bearer(current.accessToken) })
  t.equal(response.statusCode, 204, response.body)
  await assertDead(t, target, 'the deleted session')
  await assertAlive(t, current, 'the current session')
  await assertAlive(t, kept, 'the third session')
  const list = json<{ items: { id: string }[] }>(
    await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(current.accessToken) })
  )
  t.notOk(list.items.some((s) => s.id === target.sessionId), 'no longer listed')

  const foreign = await app.inject({
    method: 'DELETE',
    url: `/auth/sessions/${bystander.sessions[0]!.sessionId}`,
    headers: bearer(current.accessToken),
  })
  t.equal(foreign.statusCode, 404, "another user's session: 404")
  t.equal(json(foreign).statusCode, 404)
  await assertAlive(t, bystander.sessions[0]!, "another user's session")

  const again = await app.inject({ method: 'DELETE', url: `/auth/sessions/${target.sessionId}`, headers: bearer(current.accessToken) })
  t.equal(again.statusCode, 404, 'an already revoked session: 404')
  const unknown = await app.inject({ method: 'DELETE', url: `/auth/sessions/${randomUUID()}`, headers: bearer(current.accessToken) })
  t.equal(unknown.statusCode, 404, 'an unknown id: 404')

  for (const id of ['not-a-uuid', '1', "'%20OR%201=1", `${randomUUID()}x`]) {
    const bad = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(current.accessToken) })
    t.equal(bad.statusCode, 400, `${id}: 400`)
    t.same(Object.keys(json(bad)).sort(), ['code', 'error', 'message', 'statusCode'])
  }
  const anonymous = await app.inject({ method: 'DELETE', url: `/auth/sessions/${kept.sessionId}` })
  t.equal(anonymous.statusCode, 401)
  t.notOk(await isRevoked(kept.sessionId))
})

t.test('finding 6: DELETE /auth/sessions/urn:uuid:<id> is 400, never 500; any case of the id is the same id', async (t) => {
  const { sessions } = await userWithSessions(2)
  const [current, target] = sessions as [Login, Login]
  for (const id of [`urn:uuid:${target.sessionId}`, `URN:UUID:${target.sessionId.toUpperCase()}`, `{${target.sessionId}}`, target.sessionId.replaceAll('-', '')]) {
    const response = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(current.accessToken) })
    t.equal(response.statusCode, 400, `${id}: 400 (${response.body})`)
    t.equal(json(response).code, 'validation_failed')
  }
  await assertAlive(t, target, 'the session named by the refused ids')
  const upper = await app.inject({ method: 'DELETE', url: `/auth/sessions/${target.sessionId.toUpperCase()}`, headers: bearer(current.accessToken) })
  t.equal(upper.statusCode, 204, `an upper-case id revokes (${upper.body})`)
  t.ok(await isRevoked(target.sessionId), 'the session is revoked')
  const [event] = await app.db.auditEvent.findMany({ where: { type: 'session_revoked', details: { path: ['sessionId'], equals: target.sessionId } } })
  t.ok(event, 'the audit event names the canonical id')
})

t.test('a revoked session\'s access token is refused at once on this instance', async (t) => {
  const { sessions } = await userWithSessions(1)
  const login = sessions[0]!
  t.equal((await me(app, login.accessToken)).statusCode, 200, 'accepted (and cached) before')
  await app.sessions.revoke({ sessionId: login.sessionId }, 'test')
  const response = await me(app, login.accessToken)
  t.equal(response.statusCode, 401)
  t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  t.equal(json(response).code, 'invalid_token')
})

t.test('a revocation reaches a second instance on the same database within 1 second', async (t) => {
  const second = await buildTestApp({}, { database })
  t.teardown(second.close)
  const { sessions } = await userWithSessions(1)
  const login = sessions[0]!
  const before = await me(second.app, login.accessToken)
  t.equal(before.statusCode, 200, 'the second instance accepts the token before the revocation')

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(login.accessToken) })
  t.equal(logout.statusCode, 204)
  const started = Date.now()
  let response = await me(second.app, login.accessToken)
  while (response.statusCode === 200 && Date.now() - started < 3_000) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    response = await me(second.app, login.accessToken)
  }
  const elapsed = Date.now() - started
  t.equal(response.statusCode, 401, `refused on the second instance after ${elapsed} ms`)
  t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  t.ok(elapsed < 1_000, `within one second (${elapsed} ms)`)
})

t.test('POST /auth/revoke (RFC 7009) with a refresh token revokes its session', async (t) => {
  const { userId, sessions } = await userWithSessions(3)
  const [viaJson, viaForm, kept] = sessions as [Login, Login, Login]

  const jsonResponse = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: viaJson.refreshToken, token_type_hint: 'refresh_token' } })
  t.equal(jsonResponse.statusCode, 200, jsonResponse.body)
  t.equal(jsonResponse.headers['cache-control'], 'no-store')
  await assertDead(t, viaJson, 'revoked with a JSON body')

  const formResponse = await app.inject({
    method: 'POST',
    url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: viaForm.refreshToken, client_id: 'mobile' }).toString(),
  })
  t.equal(formResponse.statusCode, 200, formResponse.body)
  await assertDead(t, viaForm, 'revoked with a form body')

  await assertAlive(t, kept, 'the third session')
  t.equal(
    await app.db.auditEvent.count({ where: { userId, type: 'session_revoked' } }),
    2,
    'an audit event per revocation'
  )
})

t.test('POST /auth/revoke answers 200 for an unknown token', async (t) => {
  for (const token of [randomBytes(32).toString('base64url'), 'garbage', 'x'.repeat(400), "' OR 1=1 --"]) {
    const response = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token } })
    t.equal(response.statusCode, 200, `${token.slice(0, 12)}…: 200 (${response.body})`)
  }
  const form = await app.inject({
    method: 'POST',
    url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'token=unknown',
  })
  t.equal(form.statusCode, 200)
  const missing = await app.inject({ method: 'POST', url: '/auth/revoke', payload: {} })
  t.equal(missing.statusCode, 400, 'no token parameter: 400')
  t.equal(json(missing).error, 'invalid_request')
})

t.test('POST /auth/revoke with an access token answers unsupported_token_type (RFC 7009 §2.2.1), and revokes nothing', async (t) => {
  // Security review finding 9: an access token (longer than 512 characters
  // with a long scope) got a schema error instead.
  const { sessions } = await userWithSessions(1)
  const login = sessions[0]!
  const padded = `${login.accessToken.split('.').slice(0, 2).join('.')}.${'A'.repeat(700)}`
  for (const [label, token] of [['an access token', login.accessToken], ['a JWT longer than 512 characters', padded]] as const) {
    for (const form of [false, true]) {
      const response = await app.inject({
        method: 'POST',
        url: '/auth/revoke',
        ...(form
          ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString() }
          : { payload: { token, token_type_hint: 'access_token' } }),
      })
      t.equal(response.statusCode, 400, `${label} (${form ? 'form' : 'JSON'}): 400 (${response.body})`)
      t.equal(json(response).error, 'unsupported_token_type')
      t.equal(response.headers['cache-control'], 'no-store')
    }
  }
  await assertAlive(t, login, 'the session')
})

t.test('POST /auth/revoke of an API key by whoever holds it is audited without naming the owner as actor', async (t) => {
  // Security review finding 8: the event named the key's owner as the one who revoked it.
  const { userId, sessions } = await userWithSessions(1)
  await users.markAddressVerified(app, sessions[0]!.accessToken) // an API key needs a verified address
  const created = await app.inject({
    method: 'POST',
    url: '/api-keys',
    headers: bearer(sessions[0]!.accessToken),
    payload: { name: 'leaked key', scopes: ['profile'] },
  })
  t.equal(created.statusCode, 201, created.body)
  const { id, key } = json<{ id: string; key: string }>(created)
  const response = await app.inject({ method: 'POST', url: '/auth/revoke', remoteAddress: '192.0.2.77', payload: { token: key } })
  t.equal(response.statusCode, 200, response.body)
  const event = await app.db.auditEvent.findFirstOrThrow({ where: { userId, type: 'api_key_revoked' } })
  t.equal(event.actorId, null, 'no actor: the presenter is not authenticated')
  t.equal(event.ip, '192.0.2.77', "the presenter's address")
  t.match(event.details, { apiKeyId: id, via: 'revocation_endpoint' })
})

t.test('POST /auth/revoke does not revoke another client\'s token', async (t) => {
  const { sessions } = await userWithSessions(1)
  const login = sessions[0]! // issued to mobile, the default client
  for (const clientId of ['web', 'admin']) {
    const response = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: login.refreshToken, client_id: clientId } })
    t.equal(response.statusCode, 200, `${clientId}: 200 as for an unknown token`)
    t.notOk(await isRevoked(login.sessionId), `${clientId}: not revoked`)
  }
  const unknownClient = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: login.refreshToken, client_id: 'nobody' } })
  t.equal(unknownClient.statusCode, 401)
  t.equal(json(unknownClient).error, 'invalid_client')
  t.notOk(await isRevoked(login.sessionId))
  await assertAlive(t, login, 'the session')
})
