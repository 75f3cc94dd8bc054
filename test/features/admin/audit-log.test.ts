import t, { type Test } from 'tap'
import { fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { injectAs, login, passwordGrant, signup, signupAdmin } from '../../helpers/users.js'
import type { AuditEvent, Page } from './wire.js'

/**
 * The audit log as the dashboard reads it (GET /admin/audit-events): each
 * event names its user and actor by their current addresses (`userEmail`,
 * `actorEmail`, joined in the same statement), and the `email` filter
 * resolves an address to its user, whose events it lists, from before an
 * address change too. The other filters (userId, type, since, until) keep
 * working, alone and with it.
 */

const main = await fileTestApp()
const { app } = main

type App = TestApp['app']
type Response = Awaited<ReturnType<App['inject']>>

const MOBILE = { clientId: 'mobile' }
const admin = await signupAdmin(app, {}, MOBILE)

const get = (url: string): Promise<Response> => injectAs(app, admin.access_token, 'GET', url)

async function events (t: Test, query: string): Promise<AuditEvent[]> {
  const response = await get(`/admin/audit-events${query}`)
  t.equal(response.statusCode, 200, `?${query}: 200 (${response.body.slice(0, 200)})`)
  return json<Page<AuditEvent>>(response).items
}

/** A user with a sign-up, a sign-in, a failed sign-in, and a role changed there and back by the admin. */
async function busyUser (label: string) {
  const user = await signup(app, { label })
  await login(app, user.email, MOBILE)
  await passwordGrant(app, user.email, { ...MOBILE, password: 'not the password' })
  await injectAs(app, admin.access_token, 'PATCH', `/admin/users/${user.id}`, { role: 'admin' })
  await injectAs(app, admin.access_token, 'PATCH', `/admin/users/${user.id}`, { role: 'user' })
  return user
}

const ids = (items: AuditEvent[]) => items.map((event) => event.id)

t.test('every event names its user and actor by their current addresses', async (t) => {
  const user = await busyUser('named')
  const items = await events(t, `?userId=${user.id}`)
  t.same(items.map((e) => e.type), ['role_changed', 'role_changed', 'login_failed', 'login_succeeded', 'user_signed_up'])
  for (const event of items) t.equal(event.userEmail, user.email, `${event.type}: the user's address`)
  const [roleChange] = items
  t.match(roleChange, { actorId: admin.id, actorEmail: admin.email, details: { from: 'admin', to: 'user' } }, "an admin's change names the admin")
  const signUp = items.at(-1)!
  t.equal(signUp.actorId, null)
  t.equal(signUp.actorEmail, null, 'no actor: null')

  const nobody = `nobody-${Date.now()}@users.test`
  await passwordGrant(app, nobody, MOBILE)
  const [failed] = await events(t, '?type=login_failed&limit=1')
  t.match(failed, { userId: null, userEmail: null, details: { reason: 'unknown_email' } }, 'no user: null, and the address tried is not shown')

  // The address now, not the one at the time of the event.
  const renamed = `renamed-${Date.now()}@users.test`
  await app.db.user.update({ where: { id: user.id }, data: { email: renamed } })
  const after = await events(t, `?userId=${user.id}`)
  t.ok(after.every((event) => event.userEmail === renamed), 'after an address change, the new address')
})

t.test('the email filter: the events of the user with that address', async (t) => {
  const user = await busyUser('filtered')
  const other = await busyUser('other')
  const byId = await events(t, `?userId=${user.id}`)
  t.equal(byId.length, 5)
  const byEmail = await events(t, `?email=${encodeURIComponent(user.email)}`)
  t.same(ids(byEmail), ids(byId), 'the same events as by id')
  t.ok(byEmail.every((event) => event.userId === user.id), 'only theirs: not the events where they act, not the other user')

  t.same(ids(await events(t, `?email=${encodeURIComponent(user.email.toUpperCase())}`)), ids(byId), 'normalised as at sign-up: any case')
  t.same(ids(await events(t, `?email=${encodeURIComponent(`  ${user.email} `)}`)), ids(byId), 'and trimmed')

  const logins = await events(t, `?email=${encodeURIComponent(user.email)}&type=login_succeeded`)
  t.same(logins.map((e) => e.type), ['login_succeeded'], 'with type')
  const since = byId[2]!.at
  t.same(
    ids(await events(t, `?email=${encodeURIComponent(user.email)}&since=${since}`)).sort(),
    ids(byId.filter((e) => e.at >= since)).sort(),
    'with since'
  )
  t.same(ids(await events(t, `?email=${encodeURIComponent(user.email)}&userId=${user.id}`)), ids(byId), 'with their own id')
  t.same(await events(t, `?email=${encodeURIComponent(user.email)}&userId=${other.id}`), [], "with another user's id: none (both filters hold)")
  t.same(await events(t, `?email=${encodeURIComponent(`no-one-${Date.now()}@users.test`)}`), [], 'an address no user has: none')

  // Pages of two with the filter: every event once, in order.
  const paged: string[] = []
  let page = json<Page<AuditEvent>>(await get(`/admin/audit-events?email=${encodeURIComponent(user.email)}&limit=2`))
  paged.push(...ids(page.items))
  while (page.nextCursor) {
    page = json<Page<AuditEvent>>(await get(`/admin/audit-events?email=${encodeURIComponent(user.email)}&limit=2&cursor=${page.nextCursor}`))
    paged.push(...ids(page.items))
  }
  t.same(paged, ids(byId), 'the cursor works with it')

  // The address resolves to the user: after a change, the new address finds the events from before it; the old one none.
  const renamed = `moved-${Date.now()}@users.test`
  await app.db.user.update({ where: { id: user.id }, data: { email: renamed } })
  t.same(ids(await events(t, `?email=${encodeURIComponent(renamed)}`)), ids(byId), 'the new address finds the older events')
  t.same(await events(t, `?email=${encodeURIComponent(user.email)}`), [], 'the old address finds nothing')
})

t.test('the email filter is validated; the existing filters are unchanged', async (t) => {
  for (const [query, code] of [
    ['email=', 'validation_failed'],
    ['email=ab', 'validation_failed'],
    [`email=${'a'.repeat(310)}%40users.test`, 'validation_failed'],
    ['email=a%00b%40users.test', 'validation_failed'],
    ['email=not-an-address', 'invalid_email'],
    ['email=two%40at%40users.test', 'invalid_email'],
  ] as const) {
    const response = await get(`/admin/audit-events?${query}`)
    t.equal(response.statusCode, 400, `?${query.slice(0, 40)}: 400`)
    t.equal(json(response).code, code, `?${query.slice(0, 40)}: ${code}`)
  }
  for (const query of ['userId=nope', 'type=no_such_event', 'since=yesterday', 'actor=me', 'emails=a%40b.c']) {
    t.equal((await get(`/admin/audit-events?${query}`)).statusCode, 400, `?${query}: 400`)
  }
  const user = await busyUser('unchanged')
  t.same((await events(t, `?userId=${user.id}&type=role_changed`)).map((e) => e.type), ['role_changed', 'role_changed'], 'userId and type')
  t.ok((await events(t, '?type=role_changed&limit=100')).every((e) => e.type === 'role_changed'), 'type alone')
})
