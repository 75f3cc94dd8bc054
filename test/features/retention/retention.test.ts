import t from 'tap'
import { Retention } from '../../../src/features/retention/retention.js'
import { appsOn, json, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { bearer, createApiKey, injectAs, login, refresh, signup, signupAdmin, type Account } from '../../helpers/users.js'

/**
 * Retention (DESIGN §3.13): sessions and API keys dead for
 * SESSION_RETENTION_DAYS, audit events older than AUDIT_RETENTION_DAYS, in
 * small batches, by any number of instances at once, without changing what a
 * live session or the audit view shows.
 *
 * Each test builds its own app and clock on the file's one database and
 * counts only its own users' rows.
 */

const DAY = 24 * 3600
const database = await createTestDatabase()
t.teardown(() => database.drop())

const testApp = appsOn(database)

async function sessionIds (app: TestApp['app'], user: Account): Promise<string[]> {
  const rows = await app.db.session.findMany({ where: { userId: user.id }, select: { id: true }, orderBy: { createdAt: 'asc' } })
  return rows.map((row) => row.id)
}

t.test('sessions dead for longer than SESSION_RETENTION_DAYS are deleted; the rest are kept', async (t) => {
  const { app, clock } = await testApp(t)
  // Day 0: a session revoked at once, and one left to idle out (7 days).
  const revokedEarly = await signup(app)
  await injectAs(app, revokedEarly.access_token, 'POST', '/auth/logout')
  const idled = await signup(app)
  clock.advance(25 * DAY)
  // Day 25: a live one, and one revoked now.
  const live = await signup(app)
  const revokedLate = await signup(app)
  await injectAs(app, revokedLate.access_token, 'POST', '/auth/logout')
  clock.advance(6 * DAY)

  // Day 31: only the session revoked on day 0 is dead for more than 30 days.
  const first = await app.retention.runPass()
  t.ok(first.sessions! >= 1, `the pass reports what it deleted (${JSON.stringify(first)})`)
  t.same(await sessionIds(app, revokedEarly), [], 'revoked 31 days ago: deleted')
  t.equal((await sessionIds(app, idled)).length, 1, 'idle since day 7, dead for 24 days: kept')
  t.equal((await sessionIds(app, live)).length, 1, 'live: kept')
  t.equal((await sessionIds(app, revokedLate)).length, 1, 'revoked 6 days ago: kept')

  // The live session keeps rotating across the passes.
  const rotated = await refresh(app, live.refresh_token)
  t.equal(rotated.statusCode, 200, 'the live session refreshes')
  clock.advance(7 * DAY)
  // Day 38: the idle one has been dead for 31 days; the live one rotated on day 31.
  await app.retention.runPass()
  t.same(await sessionIds(app, idled), [], 'idle-expired 31 days ago: deleted')
  t.equal((await sessionIds(app, live)).length, 1, 'the session that rotated: kept')
  t.equal((await sessionIds(app, revokedLate)).length, 1, 'revoked 13 days ago: kept')

  // A deleted session's token is simply unknown: invalid_grant, not a 500.
  const gone = await refresh(app, revokedEarly.refresh_token)
  t.equal(gone.statusCode, 400)
  t.equal(json(gone).error, 'invalid_grant')
})

t.test('SESSION_RETENTION_DAYS is honoured, and a revoked session outlives every access token it issued', async (t) => {
  // One day of retention, but access tokens that live two: a restarted
  // instance learns of the revocation from the row, so the row stays.
  const { app, clock } = await testApp(t, { SESSION_RETENTION_DAYS: '1', ACCESS_TOKEN_TTL_SECONDS: String(2 * DAY) })
  const user = await signup(app)
  await injectAs(app, user.access_token, 'POST', '/auth/logout')
  clock.advance(1.5 * DAY)
  await app.retention.runPass()
  t.equal((await sessionIds(app, user)).length, 1, 'kept while its access tokens could live')
  clock.advance(1 * DAY)
  await app.retention.runPass()
  t.same(await sessionIds(app, user), [], 'deleted once they are all expired')

  const short = await testApp(t, { SESSION_RETENTION_DAYS: '1' })
  const other = await signup(short.app)
  await injectAs(short.app, other.access_token, 'POST', '/auth/logout')
  short.clock.advance(DAY + 3600)
  await short.app.retention.runPass()
  t.same(await sessionIds(short.app, other), [], 'with short access tokens, one day is one day')
})

t.test('API keys revoked or expired for longer than the retention are deleted', async (t) => {
  const { app, clock } = await testApp(t)
  const user = await signup(app)
  const revoked = await createApiKey(app, user.access_token, { name: 'revoked', scopes: ['profile'] })
  await createApiKey(app, user.access_token, { name: 'expiring', scopes: ['profile'], expiresAt: new Date(clock.now() + DAY * 1000).toISOString() })
  const kept = await createApiKey(app, user.access_token, { name: 'kept', scopes: ['profile'] })
  t.equal((await injectAs(app, user.access_token, 'DELETE', `/api-keys/${revoked.id}`)).statusCode, 204)
  clock.advance(31 * DAY)
  await app.retention.runPass()
  const left = await app.db.apiKey.findMany({ where: { userId: user.id }, select: { id: true } })
  t.same(left.map((k) => k.id), [kept.id], 'revoked 31 days ago and expired 30 days ago: deleted; the live key: kept')
})

t.test('audit events older than AUDIT_RETENTION_DAYS are deleted; 0 keeps them all', async (t) => {
  const { app, clock } = await testApp(t, { AUDIT_RETENTION_DAYS: '400' })
  const user = await signup(app)
  const at = (daysAgo: number) => new Date(clock.now() - daysAgo * DAY * 1000)
  await app.db.auditEvent.createMany({
    data: [401, 399, 10].map((daysAgo) => ({ type: 'test_event', userId: user.id, at: at(daysAgo), details: { daysAgo } })),
  })
  const forever = await testApp(t, { AUDIT_RETENTION_DAYS: '0' })
  forever.clock.advance(0)
  await forever.app.retention.runPass()
  t.equal(await app.db.auditEvent.count({ where: { userId: user.id, type: 'test_event' } }), 3, 'AUDIT_RETENTION_DAYS=0: nothing deleted')

  await app.retention.runPass()
  const left = await app.db.auditEvent.findMany({ where: { userId: user.id, type: 'test_event' }, select: { details: true }, orderBy: { at: 'asc' } })
  t.same(left.map((e) => (e.details as { daysAgo: number }).daysAgo), [399, 10], '401 days old: deleted; 399 and 10: kept')
})

t.test('deleting changes nothing a live session or the audit view within the retention shows', async (t) => {
  const { app, clock } = await testApp(t)
  const admin = await signupAdmin(app)
  const user = await signup(app)
  const dying = await login(app, user.email)
  await injectAs(app, dying.access_token, 'POST', '/auth/logout')
  // Past the sign-up session's idle expiry (7 days) plus the retention (30).
  clock.advance(38 * DAY)
  // The user signs in again: a live session, listed by both the user and the admin.
  const current = await login(app, user.email)
  const adminTokens = await login(app, admin.email)
  const view = async () => ({
    sessions: json(await injectAs(app, current.access_token, 'GET', '/auth/sessions')),
    adminSessions: json(await injectAs(app, adminTokens.access_token, 'GET', `/admin/users/${user.id}/sessions`)),
    audit: json(await injectAs(app, adminTokens.access_token, 'GET', `/admin/audit-events?userId=${user.id}`)),
  })
  // The clock jumped 38 days: let the revocation list catch up, as its timer would.
  await app.revocations.sync()
  const before = await view()
  t.ok((before.audit as { items: unknown[] }).items.some((e) => (e as { type: string }).type === 'logged_out'), 'the audit view shows the old logout')
  const report = await app.retention.runPass()
  t.ok(report.sessions! >= 1, 'the old sessions were deleted')
  t.same(await sessionIds(app, user), [current.sessionId], 'only the live session is left')
  t.same(await view(), before, 'the user\'s sessions, the admin\'s sessions and the audit view are unchanged')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(current.access_token) })).statusCode, 200)
})

t.test('small batches delete everything dead, and two instances sweeping at once neither collide nor miss anything', async (t) => {
  const { app, clock } = await testApp(t)
  const users: Account[] = []
  for (let i = 0; i < 12; i++) users.push(await signup(app))
  const survivors = users.filter((_, i) => i % 3 === 0)
  for (const [i, user] of users.entries()) if (i % 3 !== 0) await injectAs(app, user.access_token, 'POST', '/auth/logout')
  // Every sign-up session is dead for 30 days by then: revoked on day 0, or idle since day 7.
  clock.advance(38 * DAY)
  // The survivors come back: fresh live sessions beside the old ones.
  const fresh = await Promise.all(survivors.map((user) => login(app, user.email)))

  const policy = { sessionRetentionDays: 30, auditRetentionDays: 0, accessTokenLifetimeMs: 0, emailRetentionDays: 3650 }
  const instances = [0, 1].map(() => new Retention(app.sql, policy, { now: clock.now, batchSize: 3, pauseMs: 0 }))
  const reports = await Promise.all(instances.map((r) => r.runPass()))
  // Rotations go on while the instances sweep.
  const rotations = await Promise.all(fresh.map((tokens) => refresh(app, tokens.refresh_token)))
  t.same(rotations.map((r) => r.statusCode), fresh.map(() => 200), 'live sessions rotate during the sweep')

  const deletedOfOurs = users.length
  t.ok(reports[0]!.sessions! + reports[1]!.sessions! >= deletedOfOurs, `together the passes deleted every dead session of ours (${reports.map((r) => r.sessions).join(' + ')} >= ${deletedOfOurs})`)
  for (const [i, user] of users.entries()) {
    const expected = i % 3 === 0 ? [fresh[survivors.indexOf(user)]!.sessionId] : []
    t.same(await sessionIds(app, user), expected, `user ${i}: ${expected.length} session left`)
  }
})

t.test('sent and dead emails, and used or expired link secrets, older than EMAIL_RETENTION_DAYS are deleted; pending mail and live links are kept', async (t) => {
  const { app, clock } = await testApp(t, { EMAIL_RETENTION_DAYS: '7' })
  const user = await signup(app)
  const at = (daysAgo: number) => new Date(clock.now() - daysAgo * DAY * 1000)
  const message = (label: string, state: { sentAt?: Date; deadAt?: Date }) =>
    app.db.$transaction(async (tx) => {
      const id = await app.outbox.enqueue(tx, { recipient: `${label}-${user.email}`, template: 'password_changed', data: { email: user.email } })
      await tx.emailOutbox.update({ where: { id }, data: { ...state, nextAttemptAt: state.sentAt || state.deadAt ? null : at(0) } })
      return id
    })
  const sentOld = await message('sent-old', { sentAt: at(8) })
  const sentRecent = await message('sent-recent', { sentAt: at(6) })
  const deadOld = await message('dead-old', { deadAt: at(8) })
  const pending = await message('pending', {})
  await app.db.emailOutbox.update({ where: { id: pending }, data: { createdAt: at(30) } })

  const token = (label: string, data: { usedAt?: Date; expiresAt: Date }) =>
    app.db.accountToken.create({ data: { userId: user.id, purpose: 'password_reset', tokenHash: new Uint8Array(Buffer.from(label.padEnd(32, '.'))), ...data } })
  await token('used-old', { usedAt: at(8), expiresAt: at(-1) })
  const usedRecent = await token('used-recent', { usedAt: at(1), expiresAt: at(-1) })
  await token('expired-old', { expiresAt: at(8) })
  const live = await token('live', { expiresAt: at(-1) })

  const report = await app.retention.runPass()
  t.match(report, { outboxSent: 1, outboxDead: 1, accountTokensUsed: 1, accountTokensExpired: 1 }, JSON.stringify(report))
  const outboxLeft = (await app.db.emailOutbox.findMany({ where: { id: { in: [sentOld, sentRecent, deadOld, pending] } } })).map((r) => r.id)
  t.same(outboxLeft.sort(), [sentRecent, pending].sort(), 'recently sent and pending (however old) messages are kept')
  const tokensLeft = (await app.db.accountToken.findMany({ where: { userId: user.id, purpose: 'password_reset' } })).map((r) => r.id)
  t.same(tokensLeft.sort(), [usedRecent.id, live.id].sort(), 'a recently used and a live secret are kept')
})

t.test('second factors: spent or expired mfa tokens after an hour, unconfirmed TOTP enrolments after an hour; the rest is kept', async (t) => {
  const { app, clock } = await testApp(t)
  const user = await signup(app)
  const pendingUser = await signup(app)
  const freshPendingUser = await signup(app)
  const confirmedUser = await signup(app)
  const HOUR_MS = 3600 * 1000
  const at = (msAgo: number) => new Date(clock.now() - msAgo)
  const token = (label: string, data: { usedAt?: Date; expiresAt: Date }) =>
    app.db.mfaToken.create({
      data: {
        userId: user.id,
        tokenHash: new Uint8Array(Buffer.from(label.padEnd(32, '.'))),
        clientId: 'mobile',
        transport: 'body',
        scope: 'profile',
        role: 'user',
        passwordHashMac: new Uint8Array(32),
        ...data,
      },
    })
  await token('used-old', { usedAt: at(HOUR_MS + 60_000), expiresAt: at(HOUR_MS - 240_000) })
  const usedRecent = await token('used-recent', { usedAt: at(60_000), expiresAt: at(-240_000) })
  await token('expired-old', { expiresAt: at(HOUR_MS + 1000) })
  const expiredRecent = await token('expired-recent', { expiresAt: at(60_000) })
  const live = await token('live', { expiresAt: at(-300_000) })

  const factor = (userId: string, data: { createdAt: Date; confirmedAt?: Date }) =>
    app.db.totpFactor.create({ data: { userId, secretEncrypted: new Uint8Array(44), ...data } })
  await factor(pendingUser.id, { createdAt: at(HOUR_MS + 1000) })
  await factor(freshPendingUser.id, { createdAt: at(HOUR_MS - 60_000) })
  await factor(confirmedUser.id, { createdAt: at(400 * DAY * 1000), confirmedAt: at(399 * DAY * 1000) })

  const report = await app.retention.runPass()
  t.match(report, { mfaTokensUsed: 1, mfaTokensExpired: 1, pendingTotpEnrolments: 1 }, JSON.stringify(report))
  const tokensLeft = (await app.db.mfaToken.findMany({ where: { userId: user.id } })).map((r) => r.id)
  t.same(tokensLeft.sort(), [usedRecent.id, expiredRecent.id, live.id].sort(), 'recently spent, recently expired and live tokens are kept')
  const factorsLeft = (await app.db.totpFactor.findMany({ where: { userId: { in: [pendingUser.id, freshPendingUser.id, confirmedUser.id] } } })).map((r) => r.userId)
  t.same(factorsLeft.sort(), [freshPendingUser.id, confirmedUser.id].sort(), 'a young pending enrolment and a confirmed factor (however old) are kept')
})

t.test('expired WebAuthn challenges are deleted at once; live ones are kept', async (t) => {
  const { app, clock } = await testApp(t)
  const user = await signup(app)
  const challenge = (label: string, expiresInSeconds: number) =>
    app.db.webauthnChallenge.create({
      data: { challengeHash: new Uint8Array(Buffer.from(label.padEnd(32, '.'))), purpose: 'registration', userId: user.id, expiresAt: new Date(clock.now() + expiresInSeconds * 1000) },
    })
  await challenge('expired-long-ago', -3 * DAY)
  await challenge('expired-just-now', -1)
  const live = await challenge('live', 60)
  const report = await app.retention.runPass()
  t.equal(report.webauthnChallengesExpired, 2, JSON.stringify(report))
  t.same((await app.db.webauthnChallenge.findMany({ where: { userId: user.id } })).map((r) => r.id), [live.id], 'the live challenge is kept')
})
