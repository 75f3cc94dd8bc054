import t, { type Test } from 'tap'
import { buildTestApp, fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { injectAs, login, markAddressVerified, me, passwordGrant, refresh, signup, signupAdmin, type Tokens } from '../../helpers/users.js'
import type { AuditEvent, Page } from './wire.js'

/**
 * The admin API (DESIGN §3.8): admins only; the user directory with keyset
 * pagination that neither repeats nor skips under concurrent sign-ups; role
 * changes and disabling that take effect at once (disabling revokes every
 * session, and the user's live access tokens die within a second on every
 * instance); sessions; the audit log with filters and a stable cursor.
 */

const main = await fileTestApp()
const { app } = main

type App = TestApp['app']
type Response = Awaited<ReturnType<App['inject']>>

interface PublicUser {
  id: string
  email: string
  role: string
  disabled: boolean
  createdAt: string
}

/** The mobile client, named as these tests have always sent it. */
const MOBILE = { clientId: 'mobile' }

const admin = await signupAdmin(app, {}, MOBILE)

function asAdmin (
  method: 'GET' | 'PATCH' | 'DELETE',
  url: string,
  payload?: Record<string, unknown>,
  who: Tokens = admin,
  target: App = app
): Promise<Response> {
  return injectAs(target, who.access_token, method, url, payload)
}

async function ok<T> (t: Test, response: Response, status = 200): Promise<T> {
  t.equal(response.statusCode, status, `${status} (${response.body.slice(0, 300)})`)
  return (response.body ? json<T>(response) : (undefined as T))
}

function assertError (t: Test, response: Response, status: number, code: string, message: string) {
  t.equal(response.statusCode, status, `${message}: ${status} (${response.body.slice(0, 300)})`)
  t.equal(json(response).code, code, `${message}: ${code}`)
}

/** Calls `check` until it returns true or `ms` pass; the time it took, or null. */
async function within (ms: number, check: () => Promise<boolean>): Promise<number | null> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (Date.now() - started > ms) return null
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function eventsOf (userId: string, type?: string): Promise<AuditEvent[]> {
  const rows = await app.db.auditEvent.findMany({ where: { userId, ...(type ? { type } : {}) }, orderBy: { id: 'asc' } })
  return rows.map((row) => ({ ...row, id: row.id.toString(), at: row.at.toISOString() }) as AuditEvent)
}

const ZERO_UUID = '00000000-0000-4000-8000-000000000000'

t.test('only admins: a user gets 403 on every admin route, no token 401', async (t) => {
  const user = await signup(app)
  const victim = await signup(app, { label: 'victim' })
  const session = (await app.db.session.findFirstOrThrow({ where: { userId: victim.id } })).id
  const routes: { method: 'GET' | 'PATCH' | 'DELETE'; url: string; payload?: Record<string, unknown> }[] = [
    { method: 'GET', url: '/admin/users' },
    { method: 'GET', url: '/admin/users?q=admin' },
    { method: 'GET', url: `/admin/users/${victim.id}` },
    { method: 'PATCH', url: `/admin/users/${victim.id}`, payload: { disabled: true } },
    { method: 'PATCH', url: `/admin/users/${user.id}`, payload: { role: 'admin' } },
    { method: 'GET', url: `/admin/users/${victim.id}/sessions` },
    { method: 'DELETE', url: `/admin/users/${victim.id}/sessions` },
    { method: 'DELETE', url: `/admin/sessions/${session}` },
    { method: 'GET', url: '/admin/audit-events' },
    { method: 'GET', url: `/admin/audit-events?userId=${victim.id}` },
  ]
  for (const route of routes) {
    const forbidden = await asAdmin(route.method, route.url, route.payload, user)
    assertError(t, forbidden, 403, 'forbidden', `${route.method} ${route.url} as a user`)
    const anonymous = await app.inject({ method: route.method, url: route.url, ...(route.payload ? { payload: route.payload } : {}) })
    t.equal(anonymous.statusCode, 401, `${route.method} ${route.url} without a token: 401`)
    t.equal(anonymous.headers['www-authenticate'], 'Bearer')
  }
  const after = await app.db.user.findUniqueOrThrow({ where: { id: victim.id } })
  t.equal(after.disabled, false, 'nothing was changed')
  t.equal((await app.db.user.findUniqueOrThrow({ where: { id: user.id } })).role, 'user')
  t.equal((await app.db.session.findUniqueOrThrow({ where: { id: session } })).revokedAt, null)
  t.equal((await me(app, user.access_token)).statusCode, 200, "the user's own token is fine")
})

t.test('GET /admin/users: newest first, limit and nextCursor, search by email, bad cursors', async (t) => {
  const tag = `find${Date.now()}`
  const made = [
    await signup(app, { label: `${tag}-a` }),
    await signup(app, { label: `${tag}-b` }),
    await signup(app, { label: `${tag}-c` }),
  ]
  const first = await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?limit=2'))
  t.same(first.items.map((u) => u.id), [made[2]!.id, made[1]!.id], 'the newest first')
  t.type(first.nextCursor, 'string', 'more to come')
  for (const user of first.items) {
    t.same(
      Object.keys(user).sort(),
      ['createdAt', 'disabled', 'email', 'emailVerifiedAt', 'id', 'lastSignInAt', 'role', 'secondFactors'],
      'public fields, last sign-in and second factors only, no password hash (test/features/admin/user-list.test.ts)'
    )
  }
  const second = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?limit=2&cursor=${first.nextCursor}`))
  t.equal(second.items[0]?.id, made[0]!.id, 'the next page continues where the first ended')

  const all = await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?limit=100'))
  t.equal(all.nextCursor, null, 'no cursor on the last page')
  const times = all.items.map((u) => Date.parse(u.createdAt))
  t.same(times, [...times].sort((a, b) => b - a), 'ordered by createdAt, newest first')
  t.equal(all.items.length, await app.db.user.count())

  const found = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?q=${tag.toUpperCase()}`))
  t.same(found.items.map((u) => u.email), made.map((u) => u.email).reverse(), 'q matches part of the email, case-insensitively')
  t.equal(found.nextCursor, null)
  const one = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?q=${encodeURIComponent(`${tag}-b`)}`))
  t.same(one.items.map((u) => u.id), [made[1]!.id])
  t.same((await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?q=nobody-has-this'))).items, [])
  const paged = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?q=${tag}&limit=1`))
  const pagedNext = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?q=${tag}&limit=5&cursor=${paged.nextCursor}`))
  t.same(pagedNext.items.map((u) => u.id), [made[1]!.id, made[0]!.id], 'the cursor works with q')

  // q is a literal part of the email: LIKE wildcards in it match only themselves.
  const underscored = await signup(app, { label: `under_score${Date.now()}` })
  const wild = await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?q=_&limit=100'))
  t.same(wild.items.map((u) => u.id), [underscored.id], 'q=_ finds only the email with an underscore')
  t.same((await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?q=%25'))).items, [], 'q=% finds no one')
  t.same((await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?q=%5C'))).items, [], 'q=\\ finds no one, and is no error')

  for (const cursor of ['garbage', 'eyJ4IjoxfQ', Buffer.from('{"at":"x","id":"y"}').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
    assertError(t, await asAdmin('GET', `/admin/users?cursor=${cursor}`), 400, 'invalid_cursor', `cursor ${cursor}`)
  }
  for (const query of ['limit=0', 'limit=101', 'limit=ten', 'sort=email', 'q=']) {
    t.equal((await asAdmin('GET', `/admin/users?${query}`)).statusCode, 400, `?${query}: 400`)
  }
})

t.test('pagination is stable under sign-ups: no duplicates, no skips', async (t) => {
  while ((await app.db.user.count()) < 10) await signup(app, { label: 'filler' })
  const existing = new Set((await app.db.user.findMany({ select: { id: true } })).map((u) => u.id))
  t.ok(existing.size >= 10, `enough users for several pages (${existing.size})`)
  const seen: string[] = []
  let page = await ok<Page<PublicUser>>(t, await asAdmin('GET', '/admin/users?limit=3'))
  seen.push(...page.items.map((u) => u.id))
  const newcomers = new Set<string>()
  for (let i = 0; i < 5; i++) newcomers.add((await signup(app, { label: 'newcomer' })).id)
  let pages = 1
  while (page.nextCursor) {
    page = await ok<Page<PublicUser>>(t, await asAdmin('GET', `/admin/users?limit=3&cursor=${page.nextCursor}`))
    seen.push(...page.items.map((u) => u.id))
    if (++pages > 100) break
  }
  t.equal(new Set(seen).size, seen.length, 'no user twice')
  t.same(new Set(seen), existing, 'exactly the users that existed before the first page')
  t.notOk(seen.some((id) => newcomers.has(id)), 'none of the newcomers')
  t.ok(pages >= 3, `several pages (${pages})`)
})

t.test('GET /admin/users/:id', async (t) => {
  const user = await signup(app)
  const got = await ok<PublicUser>(t, await asAdmin('GET', `/admin/users/${user.id}`))
  t.match(got, { id: user.id, email: user.email, role: 'user', disabled: false })
  t.same(Object.keys(got).sort(), ['createdAt', 'disabled', 'email', 'emailVerifiedAt', 'id', 'role'])
  assertError(t, await asAdmin('GET', `/admin/users/${ZERO_UUID}`), 404, 'user_not_found', 'an unknown id')
  t.equal((await asAdmin('GET', '/admin/users/not-a-uuid')).statusCode, 400, 'a malformed id')
})

t.test('PATCH role: user to admin and back, audited, older tokens refused', async (t) => {
  const user = await signup(app)
  // Tokens carry whole seconds (iat): the changes come a second later than the first token.
  main.clock.advance(1)
  const promoted = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id}`, { role: 'admin' }))
  t.match(promoted, { id: user.id, role: 'admin', disabled: false })
  t.equal((await app.db.user.findUniqueOrThrow({ where: { id: user.id } })).role, 'admin')
  t.equal((await me(app, user.access_token)).statusCode, 401, 'a token naming the old role is refused')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh_token } })
  t.equal(json<{ error: string }>(refreshed).error, 'invalid_grant', 'the change of privilege ended the session: it cannot refresh into admin tokens')

  const fresh = await login(app, user.email, MOBILE)
  t.equal((await asAdmin('GET', '/admin/users?limit=1', undefined, fresh)).statusCode, 200, 'the new admin signs in again and is an admin')

  const demoted = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id}`, { role: 'user' }))
  t.equal(demoted.role, 'user')
  t.equal((await asAdmin('GET', '/admin/users?limit=1', undefined, fresh)).statusCode, 401, 'the admin token dies with the role')
  t.equal((await me(app, user.access_token)).statusCode, 401, 'a token from before both changes stays refused, though it names the role the user has again')
  t.equal((await me(app, (await login(app, user.email, MOBILE)).access_token)).statusCode, 200, 'a token issued after the change works')

  const unchanged = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id}`, { role: 'user' }))
  t.equal(unchanged.role, 'user', 'a no-op change answers the user')

  const events = await eventsOf(user.id, 'role_changed')
  t.equal(events.length, 2, 'two role changes recorded, the no-op none')
  t.match(events[0], { type: 'role_changed', userId: user.id, actorId: admin.id, details: { from: 'user', to: 'admin', revokedSessions: 1 } })
  t.match(events[1], { type: 'role_changed', userId: user.id, actorId: admin.id, details: { from: 'admin', to: 'user', revokedSessions: 1 } })
  t.type(events[0]!.ip, 'string', 'with the admin request ip')
})

t.test('PATCH disabled: every session revoked at once; live access tokens refused here and within 1 s elsewhere', async (t) => {
  const second = await buildTestApp({}, { database: main.database })
  t.teardown(second.close)
  const user = await signup(app)
  const mobile = await login(app, user.email, MOBILE)
  await markAddressVerified(app, mobile.access_token) // an API key needs a verified address
  const key = await app.inject({
    method: 'POST',
    url: '/api-keys',
    headers: { authorization: `Bearer ${mobile.access_token}` },
    payload: { name: 'k', scopes: ['profile'] },
  })
  t.equal(key.statusCode, 201, key.body)
  const apiKey = json<{ key: string }>(key).key
  t.equal((await me(app, mobile.access_token)).statusCode, 200, 'works here before')
  t.equal((await me(second.app, mobile.access_token)).statusCode, 200, 'works on the second instance before')
  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: null } }), 2, 'two live sessions')

  const disabled = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id}`, { disabled: true }))
  const disabledAt = Date.now()
  t.match(disabled, { id: user.id, disabled: true, role: 'user' })
  t.equal((await me(app, mobile.access_token)).statusCode, 401, 'refused at once on this instance')
  t.equal((await me(app, user.access_token)).statusCode, 401, 'every access token of the user')
  const elsewhere = await within(1000 - (Date.now() - disabledAt), async () => (await me(second.app, mobile.access_token)).statusCode === 401)
  t.not(elsewhere, null, 'refused on the second instance within 1 s of the change')
  t.comment(`second instance refused the token ${Date.now() - disabledAt} ms after the change`)

  t.equal(await app.db.session.count({ where: { userId: user.id, revokedAt: null } }), 0, 'no live session left')
  for (const token of [mobile.refresh_token, user.refresh_token]) {
    const response = await refresh(app, token, MOBILE)
    t.equal(response.statusCode, 400)
    t.equal(json(response).error, 'invalid_grant', 'the refresh tokens are dead')
  }
  const loginAttempt = await passwordGrant(app, user.email, MOBILE)
  t.equal(loginAttempt.statusCode, 400)
  t.equal(json(loginAttempt).error, 'invalid_grant', 'a disabled user cannot sign in')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-api-key': apiKey } })).statusCode, 401, 'nor use a key')

  const [event] = await eventsOf(user.id, 'user_disabled')
  t.match(event, { type: 'user_disabled', userId: user.id, actorId: admin.id, details: { revokedSessions: 2 } })

  const enabled = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id}`, { disabled: false }))
  t.equal(enabled.disabled, false)
  const again = await login(app, user.email, MOBILE)
  t.equal((await me(app, again.access_token)).statusCode, 200, 'signs in again once enabled')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-api-key': apiKey } })).statusCode, 200, 'the key works again')
  t.equal((await me(app, mobile.access_token)).statusCode, 401, 'but the revoked sessions stay revoked')
  const [enabledEvent] = await eventsOf(user.id, 'user_enabled')
  t.match(enabledEvent, { type: 'user_enabled', userId: user.id, actorId: admin.id })
})

t.test('an admin cannot demote or disable themself; bad bodies are refused', async (t) => {
  assertError(t, await asAdmin('PATCH', `/admin/users/${admin.id}`, { role: 'user' }), 400, 'self_lockout', 'self-demotion')
  assertError(t, await asAdmin('PATCH', `/admin/users/${admin.id}`, { disabled: true }), 400, 'self_lockout', 'self-disable')
  assertError(t, await asAdmin('PATCH', `/admin/users/${admin.id}`, { role: 'user', disabled: false }), 400, 'self_lockout', 'self-demotion with another field')
  const self = await app.db.user.findUniqueOrThrow({ where: { id: admin.id } })
  t.match(self, { role: 'admin', disabled: false }, 'still an enabled admin')
  t.equal((await asAdmin('GET', '/admin/users?limit=1')).statusCode, 200, 'and their token still works')

  const user = await signup(app)
  for (const payload of [{}, { email: 'x@y.z' }, { role: 'admin', extra: 1 }, { role: 'root' }, { disabled: 'yes' }, { role: null }]) {
    const response = await asAdmin('PATCH', `/admin/users/${user.id}`, payload)
    t.equal(response.statusCode, 400, `${JSON.stringify(payload)}: 400`)
  }
  const raw = await app.inject({
    method: 'PATCH',
    url: `/admin/users/${user.id}`,
    headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' },
    payload: '{"role": "admin"',
  })
  t.equal(raw.statusCode, 400, 'malformed JSON: 400')
  t.match(await app.db.user.findUniqueOrThrow({ where: { id: user.id } }), { role: 'user', disabled: false }, 'nothing changed')
  assertError(t, await asAdmin('PATCH', `/admin/users/${ZERO_UUID}`, { role: 'admin' }), 404, 'user_not_found', 'an unknown user')
})

t.test('sessions: list, revoke all of a user, revoke one', async (t) => {
  const user = await signup(app)
  const second = await login(app, user.email, MOBILE)
  const third = await login(app, user.email, MOBILE)
  const listed = await ok<{ items: { id: string; clientId: string; current: boolean }[] }>(t, await asAdmin('GET', `/admin/users/${user.id}/sessions`))
  t.equal(listed.items.length, 3, 'three live sessions')
  t.ok(listed.items.every((s) => s.current === false), "none is the admin's own")
  t.same(Object.keys(listed.items[0]!).sort(), ['absoluteExpiresAt', 'clientId', 'createdAt', 'current', 'id', 'idleExpiresAt', 'ip', 'lastRefreshedAt', 'userAgent'])
  assertError(t, await asAdmin('GET', `/admin/users/${ZERO_UUID}/sessions`), 404, 'user_not_found', 'sessions of an unknown user')

  const secondSid = app.sessions.readRefreshToken(second.refresh_token)!.sessionId
  const one = await asAdmin('DELETE', `/admin/sessions/${secondSid}`)
  t.equal(one.statusCode, 204, one.body)
  t.equal((await me(app, second.access_token)).statusCode, 401, 'its access token is refused at once')
  t.equal(json(await refresh(app, second.refresh_token, MOBILE)).error, 'invalid_grant', 'its refresh token is dead')
  t.equal((await me(app, third.access_token)).statusCode, 200, 'the others live')
  assertError(t, await asAdmin('DELETE', `/admin/sessions/${secondSid}`), 404, 'session_not_found', 'the same session again')
  assertError(t, await asAdmin('DELETE', `/admin/sessions/${ZERO_UUID}`), 404, 'session_not_found', 'an unknown session')
  t.equal((await asAdmin('DELETE', '/admin/sessions/nope')).statusCode, 400, 'a malformed id')
  const afterOne = await ok<{ items: { id: string }[] }>(t, await asAdmin('GET', `/admin/users/${user.id}/sessions`))
  t.equal(afterOne.items.length, 2)
  t.notOk(afterOne.items.some((s) => s.id === secondSid))

  const all = await asAdmin('DELETE', `/admin/users/${user.id}/sessions`)
  t.equal(all.statusCode, 204)
  t.same((await ok<{ items: unknown[] }>(t, await asAdmin('GET', `/admin/users/${user.id}/sessions`))).items, [], 'none left')
  for (const tokens of [user, third]) {
    t.equal((await me(app, tokens.access_token)).statusCode, 401, 'access tokens refused')
    t.equal(json(await refresh(app, tokens.refresh_token, MOBILE)).error, 'invalid_grant', 'refresh tokens dead')
  }
  assertError(t, await asAdmin('DELETE', `/admin/users/${ZERO_UUID}/sessions`), 404, 'user_not_found', 'all sessions of an unknown user')
  t.equal((await asAdmin('DELETE', `/admin/users/${user.id}/sessions`)).statusCode, 204, 'revoking none is fine')
  t.equal((await me(app, (await login(app, user.email, MOBILE)).access_token)).statusCode, 200, 'the user is not disabled: signs in again')

  const events = await eventsOf(user.id, 'session_revoked')
  t.equal(events.length, 3, 'one event per revoked session')
  for (const event of events) t.match(event, { userId: user.id, actorId: admin.id, details: { sessionId: String } })
  t.equal(events[0]!.details.sessionId, secondSid)
})

t.test('GET /admin/audit-events: filters, fields, stable cursor', async (t) => {
  const user = await signup(app)
  await passwordGrant(app, user.email, MOBILE)
  await app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'password', username: user.email, password: 'not the password' },
  })
  await login(app, user.email, MOBILE)
  await asAdmin('PATCH', `/admin/users/${user.id}`, { role: 'admin' })
  await asAdmin('PATCH', `/admin/users/${user.id}`, { role: 'user' })

  const expected = await eventsOf(user.id)
  t.same(
    expected.map((e) => e.type),
    ['user_signed_up', 'login_succeeded', 'login_failed', 'login_succeeded', 'role_changed', 'role_changed']
  )
  const byUser = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}`))
  t.same(byUser.items.map((e) => e.id), expected.map((e) => e.id).reverse(), "the user's events, newest first")
  t.equal(byUser.nextCursor, null)
  for (const event of byUser.items) {
    t.same(
      Object.keys(event).sort(),
      ['actorEmail', 'actorId', 'at', 'details', 'id', 'ip', 'type', 'userEmail', 'userId'],
      'id, type, userId and userEmail, actorId and actorEmail, ip, at (and details)'
    )
    t.type(event.id, 'string')
    t.equal(event.userId, user.id)
    t.ok(!Number.isNaN(Date.parse(event.at)), 'at is a date-time')
  }

  const logins = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}&type=login_succeeded`))
  t.same(logins.items.map((e) => e.type), ['login_succeeded', 'login_succeeded'], 'by user and type')
  const roleChanges = await ok<Page<AuditEvent>>(t, await asAdmin('GET', '/admin/audit-events?type=role_changed&limit=100'))
  t.ok(roleChanges.items.length >= 2 && roleChanges.items.every((e) => e.type === 'role_changed'), 'by type across users')
  t.ok(roleChanges.items.some((e) => e.userId === user.id && e.actorId === admin.id))

  // since is inclusive and until exclusive, on the events' own timestamps.
  const middle = expected[3]!
  const since = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}&since=${middle.at}`))
  t.same(since.items.map((e) => e.id).sort(), expected.filter((e) => e.at >= middle.at).map((e) => e.id).sort(), 'since')
  const until = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}&until=${middle.at}`))
  t.same(until.items.map((e) => e.id).sort(), expected.filter((e) => e.at < middle.at).map((e) => e.id).sort(), 'until')
  const window = await ok<Page<AuditEvent>>(
    t,
    await asAdmin('GET', `/admin/audit-events?userId=${user.id}&since=${expected[1]!.at}&until=${expected[5]!.at}`)
  )
  t.same(
    window.items.map((e) => e.id).sort(),
    expected.filter((e) => e.at >= expected[1]!.at && e.at < expected[5]!.at).map((e) => e.id).sort(),
    'since and until together'
  )
  const future = new Date(Date.now() + 3600_000).toISOString()
  t.same((await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?since=${future}`))).items, [], 'nothing after now')

  // Pages of 2, with new events written between pages: no duplicates, no skips, nothing new.
  const pageIds: string[] = []
  let page = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}&limit=2`))
  pageIds.push(...page.items.map((e) => e.id))
  while (page.nextCursor) {
    await login(app, user.email, MOBILE) // a new login_succeeded event for this user
    page = await ok<Page<AuditEvent>>(t, await asAdmin('GET', `/admin/audit-events?userId=${user.id}&limit=2&cursor=${page.nextCursor}`))
    pageIds.push(...page.items.map((e) => e.id))
  }
  t.same(pageIds, expected.map((e) => e.id).reverse(), 'the pages together are exactly the events before the first page, in order')

  for (const query of ['cursor=garbage', `cursor=${Buffer.from('{"id":"x"}').toString('base64url')}`]) {
    assertError(t, await asAdmin('GET', `/admin/audit-events?${query}`), 400, 'invalid_cursor', query)
  }
  for (const query of ['type=no_such_event', 'userId=nope', 'since=yesterday', 'limit=0', 'limit=1000', 'actor=me']) {
    t.equal((await asAdmin('GET', `/admin/audit-events?${query}`)).statusCode, 400, `?${query}: 400`)
  }
})

// ---------------------------------------------------------------- security review, findings 5 and 6

const urn = (id: string) => `urn:uuid:${id}`
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

t.test('finding 5: another spelling of their own id does not let an admin lock themself out', async (t) => {
  for (const [label, id] of [
    ['upper case', admin.id.toUpperCase()],
    ['mixed case', admin.id.replace(/[a-f]/, (c) => c.toUpperCase())],
  ] as const) {
    assertError(t, await asAdmin('PATCH', `/admin/users/${id}`, { disabled: true }), 400, 'self_lockout', `${label}: self-disable`)
    assertError(t, await asAdmin('PATCH', `/admin/users/${id}`, { role: 'user' }), 400, 'self_lockout', `${label}: self-demotion`)
  }
  t.match(await app.db.user.findUniqueOrThrow({ where: { id: admin.id } }), { role: 'admin', disabled: false }, 'still an enabled admin')
  t.equal((await asAdmin('GET', '/admin/users?limit=1')).statusCode, 200, 'and their token still works')
  // Any case is the same id (RFC 9562 §4: case-insensitive on input); the handler sees the canonical lower case.
  const user = await signup(app, { label: 'spelled' })
  const got = await ok<PublicUser>(t, await asAdmin('GET', `/admin/users/${user.id.toUpperCase()}`))
  t.equal(got.id, user.id, 'an upper-case id finds the user, answered in lower case')
  const patched = await ok<PublicUser>(t, await asAdmin('PATCH', `/admin/users/${user.id.toUpperCase()}`, { disabled: true }))
  t.equal(patched.disabled, true, 'and changes them')
  const [event] = await eventsOf(user.id, 'user_disabled')
  t.equal(event?.userId, user.id, 'the audit event names the canonical id')
})

t.test('finding 6: hostile ids, date-times, cursors and NUL in the admin API are 400, never 500', async (t) => {
  // An admin of its own: the test stands alone whatever the one above did to `admin`.
  const root = await signupAdmin(app, {}, MOBILE)
  const as = (method: 'GET' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) => asAdmin(method, url, payload, root)
  const user = await signup(app, { label: 'hostile' })
  const session = (await app.db.session.findFirstOrThrow({ where: { userId: user.id } })).id
  for (const [method, url] of [
    ['GET', `/admin/users/${urn(user.id)}`],
    ['PATCH', `/admin/users/${urn(user.id)}`],
    ['GET', `/admin/users/${urn(user.id)}/sessions`],
    ['DELETE', `/admin/users/${urn(user.id)}/sessions`],
    ['DELETE', `/admin/sessions/${urn(session)}`],
    ['DELETE', `/admin/sessions/{${session}}`],
    ['GET', `/admin/audit-events?userId=${urn(user.id)}`],
    ['GET', `/admin/audit-events?userId=${user.id.replaceAll('-', '')}`],
  ] as const) {
    assertError(t, await as(method, url, method === 'PATCH' ? { disabled: true } : undefined), 400, 'validation_failed', `${method} ${url}`)
  }
  t.equal((await app.db.session.findUniqueOrThrow({ where: { id: session } })).revokedAt, null, 'the session was not revoked')
  t.equal((await app.db.user.findUniqueOrThrow({ where: { id: user.id } })).disabled, false, 'the user was not disabled')

  for (const at of ['2016-12-31T23:59:60Z', '1990-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z', '-271821-04-20T00:00:00Z', '+275760-09-13T00:00:00Z']) {
    for (const name of ['since', 'until']) {
      assertError(t, await as('GET', `/admin/audit-events?${name}=${encodeURIComponent(at)}`), 400, 'validation_failed', `${name}=${at}`)
    }
  }
  t.equal((await as('GET', `/admin/audit-events?since=${encodeURIComponent('0001-01-01T00:00:00Z')}&until=${encodeURIComponent('9999-12-31T23:59:59.999Z')}`)).statusCode, 200, 'the ends of the range are fine')

  for (const id of ['9223372036854775808', '9999999999999999999', '0', '00', '-1', '1e3', ' 1', 1]) {
    assertError(t, await as('GET', `/admin/audit-events?cursor=${cursorOf({ id })}`), 400, 'invalid_cursor', `event cursor id ${id}`)
  }
  t.equal((await as('GET', `/admin/audit-events?cursor=${cursorOf({ id: '9223372036854775807' })}`)).statusCode, 200, 'the largest bigint is a cursor')
  assertError(t, await as('GET', `/admin/audit-events?cursor=${cursorOf({ id: '5', extra: 1 })}`), 400, 'invalid_cursor', 'event cursor with an extra field')

  for (const at of ['-271821-04-20T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', '0000-01-01T00:00:00.000Z', '2016-12-31T23:59:60.000Z', '2020-02-30T00:00:00.000Z', '2020-01-01', 'Wed, 01 Jan 2020 00:00:00 GMT']) {
    assertError(t, await as('GET', `/admin/users?cursor=${cursorOf({ at, id: user.id })}`), 400, 'invalid_cursor', `user cursor at ${at}`)
  }
  for (const id of [urn(user.id), user.id.toUpperCase(), `${user.id}\u0000`]) {
    assertError(t, await as('GET', `/admin/users?cursor=${cursorOf({ at: new Date().toISOString(), id })}`), 400, 'invalid_cursor', `user cursor id ${id}`)
  }
  t.equal((await as('GET', `/admin/users?cursor=${cursorOf({ at: new Date().toISOString(), id: user.id })}`)).statusCode, 200, 'a well-formed cursor is fine')

  for (const q of ['%00', 'a%00b', '%00%00']) {
    assertError(t, await as('GET', `/admin/users?q=${q}`), 400, 'validation_failed', `q=${q}`)
  }
})
