import { randomBytes, randomUUID } from 'node:crypto'
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import t, { type Test } from 'tap'
import { Administration } from '../../../src/features/admin/administration.js'
import { PrismaClient } from '../../../src/generated/prisma/client.js'
import { fileTestApp, json, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { injectAs, login, passwordGrant, signup, signupAdmin } from '../../helpers/users.js'

/**
 * The admin's user list (GET /admin/users) as the dashboard shows it: the
 * number of users the search matches in all pages (`total`), and with each
 * user their last sign-in (`lastSignInAt`, the newest login_succeeded event:
 * it outlives the session rows, which retention deletes) and their second
 * factors (`secondFactors`: an authenticator app on, how many passkeys).
 * The page costs the same number of statements whatever its size: the
 * per-user facts are one statement for the whole page, never one per user.
 */

const main = await fileTestApp()
const { app } = main

type App = TestApp['app']
type Response = Awaited<ReturnType<App['inject']>>

interface AdminUser {
  id: string
  email: string
  role: string
  disabled: boolean
  emailVerifiedAt: string | null
  createdAt: string
  lastSignInAt: string | null
  secondFactors: { totp: boolean; passkeys: number }
}

interface UserList {
  items: AdminUser[]
  nextCursor: string | null
  total: number
}

const MOBILE = { clientId: 'mobile' }
const admin = await signupAdmin(app, {}, MOBILE)

async function list (t: Test, query: string): Promise<UserList> {
  const response: Response = await injectAs(app, admin.access_token, 'GET', `/admin/users${query}`)
  t.equal(response.statusCode, 200, `GET /admin/users${query}: 200 (${response.body.slice(0, 200)})`)
  return json<UserList>(response)
}

async function listed (t: Test, email: string): Promise<AdminUser> {
  const page = await list(t, `?q=${encodeURIComponent(email)}`)
  t.equal(page.items.length, 1, `one user matches ${email}`)
  return page.items[0]!
}

/** The newest login_succeeded event of a user, as the database holds it. */
async function newestLogin (userId: string): Promise<string | null> {
  const event = await app.db.auditEvent.findFirst({ where: { userId, type: 'login_succeeded' }, orderBy: { at: 'desc' } })
  return event?.at.toISOString() ?? null
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('total: the users the search matches, on every page and whatever the page size', async (t) => {
  const tag = `total${Date.now()}`
  for (let i = 0; i < 5; i++) await signup(app, { label: `${tag}-${i}` })
  const all = await list(t, '?limit=2')
  t.equal(all.total, await app.db.user.count(), 'without q: every user')
  t.equal(all.items.length, 2, 'though the page holds two')

  const first = await list(t, `?q=${tag}&limit=2`)
  t.equal(first.total, 5, 'with q: the users whose address contains it')
  const second = await list(t, `?q=${tag}&limit=2&cursor=${first.nextCursor}`)
  t.equal(second.total, 5, 'the same total on the next page')
  t.equal((await list(t, `?q=${tag}&limit=100`)).total, 5, 'and with another page size')
  t.same(await list(t, '?q=nobody-has-this'), { items: [], nextCursor: null, total: 0 }, 'no match: 0')
  t.equal((await list(t, `?q=${tag.toUpperCase()}`)).total, 5, 'folded as the search is')
})

t.test('lastSignInAt: the newest successful sign-in; a failure, a refresh or the sign-up is none', async (t) => {
  const user = await signup(app, { label: 'last-sign-in' })
  t.equal((await listed(t, user.email)).lastSignInAt, null, 'a sign-up records user_signed_up, not a sign-in')

  const first = await login(app, user.email, MOBILE)
  const afterFirst = (await listed(t, user.email)).lastSignInAt
  t.not(afterFirst, null, 'a password sign-in is one')
  t.equal(afterFirst, await newestLogin(user.id), "the login_succeeded event's time")

  await pause(5)
  t.equal((await passwordGrant(app, user.email, { ...MOBILE, password: 'not the password' })).statusCode, 400)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: 'mobile' } })
  t.equal(refreshed.statusCode, 200)
  t.equal((await listed(t, user.email)).lastSignInAt, afterFirst, 'a failed sign-in and a refresh change nothing')

  await pause(5)
  await login(app, user.email, MOBILE)
  const afterSecond = (await listed(t, user.email)).lastSignInAt
  t.ok(afterSecond !== null && afterFirst !== null && Date.parse(afterSecond) > Date.parse(afterFirst), 'the next sign-in moves it on')
  t.equal(afterSecond, await newestLogin(user.id))

  // Retention deletes a session SESSION_RETENTION_DAYS after it ends; the sign-in stays known.
  await app.db.session.deleteMany({ where: { userId: user.id } })
  t.equal((await listed(t, user.email)).lastSignInAt, afterSecond, 'it outlives the sessions')
})

t.test('secondFactors: an authenticator app once confirmed, and the number of passkeys', async (t) => {
  const user = await signup(app, { label: 'factors' })
  t.same((await listed(t, user.email)).secondFactors, { totp: false, passkeys: 0 }, 'none')

  await app.db.totpFactor.create({ data: { userId: user.id, secretEncrypted: randomBytes(44) } })
  t.same((await listed(t, user.email)).secondFactors, { totp: false, passkeys: 0 }, 'a set-up not yet confirmed is not on')
  await app.db.totpFactor.update({ where: { userId: user.id }, data: { confirmedAt: new Date() } })
  t.same((await listed(t, user.email)).secondFactors, { totp: true, passkeys: 0 }, 'confirmed: on')

  for (const name of ['laptop', 'phone']) {
    await app.db.passkey.create({
      data: { userId: user.id, credentialId: randomUUID(), publicKey: randomBytes(32), deviceType: 'multiDevice', backedUp: true, aaguid: randomUUID(), name },
    })
  }
  t.same((await listed(t, user.email)).secondFactors, { totp: true, passkeys: 2 }, 'two passkeys')

  const other = await signup(app, { label: 'factors-none' })
  t.same((await listed(t, other.email)).secondFactors, { totp: false, passkeys: 0 }, "another user's factors are not theirs")
})

t.test('GET /admin/users/:id is unchanged: the public fields only', async (t) => {
  const user = await signup(app, { label: 'one' })
  const response = await injectAs(app, admin.access_token, 'GET', `/admin/users/${user.id}`)
  t.same(Object.keys(json(response)).sort(), ['createdAt', 'disabled', 'email', 'emailVerifiedAt', 'id', 'role'])
})

t.test('the OpenAPI document describes the new fields', async (t) => {
  const doc = json<{ paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } }>(await app.inject({ method: 'GET', url: '/docs/json' }))
  const listSchema = doc.paths['/admin/users']!.get.responses['200'].content['application/json'].schema
  t.ok(listSchema.required.includes('total'), 'the list answers total')
  const adminUser = doc.components.schemas.AdminUser
  t.ok(adminUser, 'AdminUser is a component')
  t.ok(['lastSignInAt', 'secondFactors'].every((name) => adminUser.required.includes(name)), 'with lastSignInAt and secondFactors')
})

// ------------------------------------------------------------ bounded statements, on a database of its own

t.test('the statements of a page do not grow with the page: one for the users, one for their facts, one count', async (t) => {
  const database = await createTestDatabase()
  const pool = new pg.Pool({ connectionString: database.url, max: database.poolMax })
  // The drop ends any connection still open (WITH FORCE): an idle client's error then must not be an uncaught one.
  pool.on('error', () => {})
  const db = new PrismaClient({ adapter: new PrismaPg(pool), log: [{ emit: 'event', level: 'query' }] })
  t.teardown(async () => {
    await db.$disconnect()
    await pool.end()
    await database.drop()
  })
  let statements: string[] = []
  db.$on('query', (event) => statements.push(event.query))

  // 30 users, each signed in twice, one in three with an authenticator app, one in two with a passkey.
  for (let i = 0; i < 30; i++) {
    const user = await db.user.create({ data: { email: `bounded-${i}@users.test`, passwordHash: 'x' } })
    await db.auditEvent.createMany({ data: [{ type: 'login_succeeded', userId: user.id }, { type: 'logged_out', userId: user.id }, { type: 'login_succeeded', userId: user.id }] })
    if (i % 3 === 0) await db.totpFactor.create({ data: { userId: user.id, secretEncrypted: randomBytes(44), confirmedAt: new Date() } })
    if (i % 2 === 0) {
      await db.passkey.create({ data: { userId: user.id, credentialId: randomUUID(), publicKey: randomBytes(32), deviceType: 'singleDevice', backedUp: false, aaguid: randomUUID(), name: 'k' } })
    }
  }
  const administration = new Administration(db, { revoke: async () => [] })
  const counts: Record<number, number> = {}
  for (const limit of [1, 5, 30]) {
    statements = []
    const page = await administration.listUsers({ limit })
    t.equal(page.items.length, limit)
    t.equal(page.total, 30)
    counts[limit] = statements.length
  }
  t.same(counts, { 1: 3, 5: 3, 30: 3 }, 'three statements for a page of 1, 5 or 30 users')
  const page = await administration.listUsers({ limit: 30 })
  t.equal(page.items.filter((user) => user.secondFactors.totp).length, 10, 'ten with an authenticator app')
  t.equal(page.items.filter((user) => user.secondFactors.passkeys === 1).length, 15, 'fifteen with a passkey')
  t.ok(page.items.every((user) => user.lastSignInAt instanceof Date), 'everyone signed in')

  statements = []
  const events = await administration.auditEvents({ limit: 50 })
  t.equal(events.items.length, 50)
  t.equal(statements.length, 1, 'an audit page with the addresses of its users and actors is one statement')
  t.match(statements[0], /LEFT JOIN users/, 'a join')
})
