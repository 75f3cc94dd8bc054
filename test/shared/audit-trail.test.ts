import t from 'tap'
import { buildTestApp, json } from '../helpers/app.js'
import { bearer, passwordGrant, sidOf } from '../helpers/users.js'

/**
 * The audit trail of one account's life, end to end: every step of a full
 * scenario writes exactly the expected event, naming the right subject
 * (userId) and actor (actorId), and no event anywhere holds a secret used in
 * the scenario (passwords, refresh tokens, access tokens, API keys).
 */

const built = await buildTestApp()
t.teardown(built.close)
const { app, clock } = built

const PASSWORD = 'a fine passphrase'
const NEW_PASSWORD = 'an even finer passphrase'
const WRONG_PASSWORD = 'wrong horse battery'
const UNKNOWN_PASSWORD = 'nobody-has-this-password'

type Response = Awaited<ReturnType<typeof app.inject>>

/** Every secret the scenario handles, to be searched for in the audit log. */
const secrets = new Set<string>([PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, UNKNOWN_PASSWORD])

function expectStatus (response: Response, status: number, step: string): Response {
  if (response.statusCode !== status) throw new Error(`${step}: expected ${status}, got ${response.statusCode} ${response.body}`)
  return response
}

function remember (body: Record<string, unknown>): void {
  for (const name of ['access_token', 'refresh_token', 'key']) {
    if (typeof body[name] === 'string') secrets.add(body[name])
  }
}

async function passwordLogin (email: string, password: string, status = 200) {
  const response = expectStatus(
    await passwordGrant(app, email, { password, clientId: 'mobile' }),
    status,
    `login ${email}`
  )
  const body = json<{ access_token: string; refresh_token: string }>(response)
  remember(body)
  return body
}

t.test('a full scenario writes exactly the expected audit events, without secrets', async (t) => {
  // The admin: signed up, promoted in the database, signed in again.
  const adminEmail = `admin-${Date.now()}@audit.test`
  const adminSignup = json<{ user: { id: string } }>(
    expectStatus(await app.inject({ method: 'POST', url: '/auth/signup', payload: { email: adminEmail, password: PASSWORD } }), 201, 'admin signup')
  )
  remember(adminSignup)
  const adminId = adminSignup.user.id
  await app.db.user.update({ where: { id: adminId }, data: { role: 'admin' } })
  const adminToken = (await passwordLogin(adminEmail, PASSWORD)).access_token

  // The user signs up (session S0).
  const email = `user-${Date.now()}@audit.test`
  const signup = json<{ user: { id: string }; access_token: string; refresh_token: string }>(
    expectStatus(await app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } }), 201, 'signup')
  )
  remember(signup)
  const userId = signup.user.id
  const s0 = sidOf(signup.access_token)
  // Set up as verified (an API key needs a verified address; verification's own event is test/features/recovery/verify-email.test.ts's).
  await app.db.user.update({ where: { id: userId }, data: { emailVerifiedAt: new Date() } })

  // A wrong password, and a login attempt on an unknown account.
  await passwordLogin(email, WRONG_PASSWORD, 400)
  await passwordLogin(`nobody-${Date.now()}@audit.test`, UNKNOWN_PASSWORD, 400)

  // Login (session S1), one refresh, then the retired token again after the grace window.
  const s1Tokens = await passwordLogin(email, PASSWORD)
  const s1 = sidOf(s1Tokens.access_token)
  const rotated = json<{ access_token: string; refresh_token: string }>(
    expectStatus(
      await app.inject({
        method: 'POST',
        url: '/auth/token',
        payload: { grant_type: 'refresh_token', refresh_token: s1Tokens.refresh_token, client_id: 'mobile' },
      }),
      200,
      'refresh'
    )
  )
  remember(rotated)
  clock.advance(app.config.refreshGraceSeconds + 1)
  // The clock jumped: bring the revocation list up to date as its timer would, so access tokens are not answered 503.
  await app.revocations.sync()
  const reuse = expectStatus(
    await app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'refresh_token', refresh_token: s1Tokens.refresh_token, client_id: 'mobile' },
    }),
    400,
    'reuse'
  )
  t.equal(json(reuse).error, 'invalid_grant', 'reuse is refused')

  // Logout of S0.
  expectStatus(await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(signup.access_token) }), 204, 'logout')

  // Login (S2), password change, an API key created and revoked.
  const s2Tokens = await passwordLogin(email, PASSWORD)
  const s2 = sidOf(s2Tokens.access_token)
  expectStatus(
    await app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(s2Tokens.access_token),
      payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
    }),
    204,
    'password change'
  )
  const key = json<{ id: string; key: string }>(
    expectStatus(
      await app.inject({ method: 'POST', url: '/api-keys', headers: bearer(s2Tokens.access_token), payload: { name: 'ci', scopes: ['profile'] } }),
      201,
      'create key'
    )
  )
  remember(key)
  expectStatus(await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-api-key': key.key } }), 200, 'use key')
  expectStatus(await app.inject({ method: 'DELETE', url: `/api-keys/${key.id}`, headers: bearer(s2Tokens.access_token) }), 204, 'revoke key')

  // The admin promotes, disables and re-enables the user.
  const patch = (payload: Record<string, unknown>) =>
    app.inject({ method: 'PATCH', url: `/admin/users/${userId}`, headers: bearer(adminToken), payload })
  expectStatus(await patch({ role: 'admin' }), 200, 'role change')
  expectStatus(await patch({ disabled: true }), 200, 'disable')
  expectStatus(await patch({ disabled: false }), 200, 'enable')

  // The user signs in with the new password (S3); the admin revokes that session.
  await passwordLogin(email, PASSWORD, 400)
  const s3Tokens = await passwordLogin(email, NEW_PASSWORD)
  const s3 = sidOf(s3Tokens.access_token)
  expectStatus(await app.inject({ method: 'DELETE', url: `/admin/sessions/${s3}`, headers: bearer(adminToken) }), 204, 'admin revokes a session')

  const events = await app.db.auditEvent.findMany({ orderBy: { id: 'asc' } })
  const actual = events.map((e) => ({ type: e.type, userId: e.userId, actorId: e.actorId }))
  t.same(
    actual,
    [
      { type: 'user_signed_up', userId: adminId, actorId: null },
      { type: 'login_succeeded', userId: adminId, actorId: null },
      { type: 'user_signed_up', userId, actorId: null },
      { type: 'login_failed', userId, actorId: null },
      { type: 'login_failed', userId: null, actorId: null },
      { type: 'login_succeeded', userId, actorId: null },
      { type: 'refresh_token_reused', userId, actorId: null },
      { type: 'logged_out', userId, actorId: userId },
      { type: 'login_succeeded', userId, actorId: null },
      { type: 'password_changed', userId, actorId: userId },
      { type: 'api_key_created', userId, actorId: userId },
      { type: 'api_key_revoked', userId, actorId: userId },
      { type: 'role_changed', userId, actorId: adminId },
      { type: 'user_disabled', userId, actorId: adminId },
      { type: 'user_enabled', userId, actorId: adminId },
      { type: 'login_failed', userId, actorId: null },
      { type: 'login_succeeded', userId, actorId: null },
      { type: 'session_revoked', userId, actorId: adminId },
    ],
    'exactly the expected events, in order, with the right subject and actor'
  )

  // Details name the sessions and keys involved.
  const find = (type: string, n = 0) => events.filter((e) => e.type === type && e.userId === userId)[n]!
  t.match(find('login_failed').details, { reason: 'wrong_password' })
  t.match(find('login_succeeded', 0).details, { sessionId: s1, clientId: 'mobile' })
  t.match(find('refresh_token_reused').details, { sessionId: s1 })
  t.match(find('logged_out').details, { sessionId: s0, scope: 'current' })
  t.match(find('login_succeeded', 1).details, { sessionId: s2 })
  t.match(find('password_changed').details, { revokedSessions: 0 })
  t.match(find('api_key_created').details, { apiKeyId: key.id })
  t.match(find('api_key_revoked').details, { apiKeyId: key.id })
  t.match(find('role_changed').details, { from: 'user', to: 'admin', revokedSessions: 1 })
  t.match(find('user_disabled').details, { revokedSessions: 0 }, 'the role change had ended the session already')
  t.match(find('session_revoked').details, { sessionId: s3 })

  // Every event comes from a request: each records the client's address.
  for (const event of events) t.type(event.ip, 'string', `${event.type} records the ip`)

  // No secret anywhere in the log, whole or as a JWT's signature.
  const log = JSON.stringify(events, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))
  t.ok(secrets.size >= 14, `the scenario's secrets are collected (${secrets.size})`)
  for (const secret of secrets) {
    const parts = secret.split('.')
    const needles = parts.length === 3 ? [secret, parts[2]!] : [secret]
    for (const needle of needles) t.notOk(log.includes(needle), `no secret in the audit log (${secret.slice(0, 8)}…)`)
  }
})
