import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { appsOn, json, type TestApp } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { login as passwordLogin, refresh, sidOf, signup } from '../../helpers/users.js'

/**
 * Refresh-token rotation (DESIGN §3.5): single use, one successor under
 * concurrency, the grace window, reuse detection, idle and absolute expiry,
 * client binding, and no raw token in the database.
 *
 * Every test builds its own app (and clock) on the file's one database, so
 * moving one test's clock never touches another's.
 */

const database = await createTestDatabase()
t.teardown(() => database.drop())

const testApp = appsOn(database)

interface TokenBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

/** Signs a new user up and logs in (mobile client, body transport): a session of its own, besides the sign-up's. */
async function login (app: TestApp['app']): Promise<{ userId: string; sessionId: string; tokens: TokenBody }> {
  const user = await signup(app)
  const { sessionId, ...tokens } = await passwordLogin(app, user.email, { clientId: 'mobile' })
  return { userId: user.id, sessionId, tokens: tokens as TokenBody }
}

/** What a browser SPA on an allowed origin sends: cookie-transport clients need it (CSRF defence). */
const SPA_HEADERS = { origin: 'http://spa.test', 'x-requested-with': 'fetch' }

async function refreshOk (t: Test, app: TestApp['app'], refreshToken: string, message = 'refresh succeeds'): Promise<TokenBody> {
  const response = await refresh(app, refreshToken)
  t.equal(response.statusCode, 200, `${message} (${response.body})`)
  t.equal(response.headers['cache-control'], 'no-store')
  return json<TokenBody>(response)
}

function assertInvalidGrant (t: Test, response: Awaited<ReturnType<typeof refresh>>, message: string) {
  t.equal(response.statusCode, 400, `${message}: 400 (${response.body})`)
  t.same(json(response), { error: 'invalid_grant', error_description: json(response).error_description }, `${message}: invalid_grant`)
  t.type(json(response).error_description, 'string')
}

/** The session row a refresh-token family lives in (DESIGN §3.13: one row, whatever the rotations). */
function family (app: TestApp['app'], sessionId: string) {
  return app.db.session.findUniqueOrThrow({
    where: { id: sessionId },
    select: { generation: true, refreshTokenHash: true, recentRetirements: true, revokedAt: true, revokedReason: true },
  })
}

/** The generation a refresh token carries. */
function generationOf (app: TestApp['app'], refreshToken: string): number | undefined {
  return app.sessions.readRefreshToken(refreshToken)?.generation
}

t.test('rotation returns a new refresh token and retires the old one', async (t) => {
  const { app } = await testApp(t)
  const { userId, sessionId, tokens } = await login(app)
  const first = await family(app, sessionId)
  t.equal(first.generation, 0, 'a new session is at generation 0')
  t.equal(generationOf(app, tokens.refresh_token), 0, 'its token carries generation 0')
  t.equal(first.refreshTokenHash?.length, 32, 'the live token is stored, by hash')
  t.same(first.recentRetirements, [], 'nothing retired yet')

  const next = await refreshOk(t, app, tokens.refresh_token)
  t.equal(next.token_type, 'Bearer')
  t.type(next.access_token, 'string')
  t.not(next.access_token, tokens.access_token)
  t.not(next.refresh_token, tokens.refresh_token, 'a new refresh token')
  t.match(next.refresh_token, /^[A-Za-z0-9_-]{92}$/)
  t.equal(sidOf(next.access_token), sessionId, 'same session')

  const rotated = await family(app, sessionId)
  t.equal(rotated.generation, 1, 'the session moved to generation 1')
  t.equal(generationOf(app, next.refresh_token), 1, 'the successor carries it')
  t.equal(app.sessions.readRefreshToken(next.refresh_token)?.sessionId, sessionId, 'and names the same session')
  t.notSame(rotated.refreshTokenHash, first.refreshTokenHash, 'the live hash is the successor\'s now')
  t.equal(rotated.recentRetirements.length, 1, 'the presented token\'s retirement is recorded')

  const third = await refreshOk(t, app, next.refresh_token, 'the successor refreshes')
  t.not(third.refresh_token, next.refresh_token)
  t.equal((await family(app, sessionId)).generation, 2)
  t.equal(await app.db.session.count({ where: { userId } }), 2, 'still one row per session: the sign-up\'s and this one')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.equal(session.revokedAt, null)
})

t.test('50 concurrent refreshes of one token: one successor, the same for all', async (t) => {
  // A wide grace window: this test is about concurrency, not about the window.
  const { app } = await testApp(t, { REFRESH_GRACE_SECONDS: '120' })
  const { sessionId, tokens } = await login(app)

  const responses = await Promise.all(Array.from({ length: 50 }, () => refresh(app, tokens.refresh_token)))
  const statuses = responses.map((r) => r.statusCode)
  t.same(statuses, Array(50).fill(200), 'every presentation inside the grace window succeeds')
  const successors = new Set(responses.filter((r) => r.statusCode === 200).map((r) => json<TokenBody>(r).refresh_token))
  t.equal(successors.size, 1, 'every 200 carries the same successor refresh token')
  const [successor] = [...successors]

  const session = await family(app, sessionId)
  t.equal(session.generation, 1, 'exactly one rotation happened')
  t.equal(generationOf(app, successor!), 1, 'and its token is the one every response carries')
  t.equal(session.recentRetirements.length, 1, 'one retirement recorded')
  t.equal(session.revokedAt, null, 'the session stays alive')
  t.equal(await app.db.auditEvent.count({ where: { type: 'refresh_token_reused', details: { path: ['sessionId'], equals: sessionId } } }), 0)

  const next = await refreshOk(t, app, successor!, 'the successor refreshes fine')
  t.not(next.refresh_token, successor)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${next.access_token}` } })
  t.equal(me.statusCode, 200)
})

t.test('a retry inside the grace window returns the same successor and revokes nothing', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '30' })
  const { userId, sessionId, tokens } = await login(app)
  const first = await refreshOk(t, app, tokens.refresh_token)
  clock.advance(20)
  const retry = await refreshOk(t, app, tokens.refresh_token, 'retry 20 s later, window 30 s')
  t.equal(retry.refresh_token, first.refresh_token, 'the same successor, not a second live token')
  t.equal(sidOf(retry.access_token), sessionId)
  const session = await family(app, sessionId)
  t.equal(session.generation, 1, 'no second rotation')
  t.equal(session.revokedAt, null, 'nothing revoked')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'refresh_token_reused' } }), 0, 'no reuse recorded')
  // Security review finding 8: the replay itself is recorded, as harmless.
  const replays = await app.db.auditEvent.findMany({ where: { userId, type: 'refresh_token_replayed' } })
  t.equal(replays.length, 1, 'one refresh_token_replayed event')
  t.match(replays[0]?.details, { sessionId }, 'naming the session')

  // Both access tokens are good, and the successor goes on rotating.
  await app.revocations.sync()
  for (const accessToken of [first.access_token, retry.access_token]) {
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(me.statusCode, 200)
  }
  const next = await refreshOk(t, app, first.refresh_token, 'the successor refreshes')
  t.not(next.refresh_token, first.refresh_token)
})

t.test('a grace retry after the successor rotated too returns the live token, never a spent one', async (t) => {
  // Two tabs share R0. Tab A rotates R0 -> R1 and then R1 -> R2; tab B, late,
  // presents R0 inside its window. Handing B the spent R1 would make B's next
  // refresh look like theft and kill the session.
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '30' })
  const { sessionId, tokens } = await login(app)
  const r1 = await refreshOk(t, app, tokens.refresh_token, 'R0 -> R1')
  clock.advance(5)
  const r2 = await refreshOk(t, app, r1.refresh_token, 'R1 -> R2')
  clock.advance(5)
  const late = await refreshOk(t, app, tokens.refresh_token, 'R0 again, 10 s after it retired')
  t.equal(late.refresh_token, r2.refresh_token, 'answered with R2, the live token')
  const again = await refreshOk(t, app, r1.refresh_token, 'R1 again, inside its own window')
  t.equal(again.refresh_token, r2.refresh_token, 'also R2')
  t.equal((await family(app, sessionId)).generation, 2, 'the grace answers rotated nothing')
  const r3 = await refreshOk(t, app, late.refresh_token, 'tab B goes on rotating from what it got')
  t.not(r3.refresh_token, r2.refresh_token)
  t.equal((await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })).revokedAt, null, 'the session lives')
})

t.test('a retired token presented after the grace window revokes the whole session', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '10' })
  const { userId, sessionId, tokens } = await login(app)
  const successor = await refreshOk(t, app, tokens.refresh_token)
  clock.advance(11)

  const reuse = await refresh(app, tokens.refresh_token)
  assertInvalidGrant(t, reuse, 'the retired token after the window')

  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.ok(session.revokedAt, 'session revoked')
  t.equal(session.revokedReason, 'refresh_token_reused')
  const events = await app.db.auditEvent.findMany({ where: { userId, type: 'refresh_token_reused' } })
  t.equal(events.length, 1, 'one audit event refresh_token_reused')
  t.match(events[0]?.details, { sessionId })

  assertInvalidGrant(t, await refresh(app, successor.refresh_token), 'the successor is dead too')
  assertInvalidGrant(t, await refresh(app, tokens.refresh_token), 'the retired token again')
  t.equal((await family(app, sessionId)).generation, 1, 'no token was issued after the reuse')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'refresh_token_reused' } }), 1, 'recorded once')

  // The session's access tokens are refused too (§3.5.7).
  await app.revocations.sync()
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${successor.access_token}` } })
  t.equal(me.statusCode, 401)
  t.match(me.headers['www-authenticate'], /^Bearer error="invalid_token"/)
})

t.test('the grace window is measured from retirement; later writes do not reopen it', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '30' })
  const { userId, sessionId, tokens } = await login(app)
  const r0 = tokens.refresh_token
  const r1 = (await refreshOk(t, app, r0, 'r0 -> r1 at t=0')).refresh_token
  const retiredAt = (await family(app, sessionId)).recentRetirements[0]
  t.ok(retiredAt, 'r0\'s retirement is recorded')

  clock.advance(20)
  const retry = await refreshOk(t, app, r0, 'grace retry of r0 at t=20')
  t.equal(retry.refresh_token, r1)
  t.same((await family(app, sessionId)).recentRetirements, [retiredAt], 'a grace retry does not move the retirement time')
  const r2 = (await refreshOk(t, app, r1, 'r1 -> r2 at t=20: the session row is written again')).refresh_token

  clock.advance(11)
  // t=31: 31 s after r0 was retired, although only 11 s after the last write to the session.
  assertInvalidGrant(t, await refresh(app, r0), 'r0 at t=31 is reuse')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.ok(session.revokedAt, 'session revoked')
  t.equal(session.revokedReason, 'refresh_token_reused')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'refresh_token_reused' } }), 1)

  // r1 was retired at t=20, so it is still inside its own window, but the
  // session is revoked: every token of it is dead, no grace answer.
  assertInvalidGrant(t, await refresh(app, r1), 'r1 inside its window after the revocation')
  assertInvalidGrant(t, await refresh(app, r2), 'r2, the live token')

  // The revocation itself wrote the session: still reuse, still dead, not re-recorded.
  clock.advance(1)
  assertInvalidGrant(t, await refresh(app, r0), 'r0 again')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'refresh_token_reused' } }), 1)
})

t.test('the window edge: inside is a retry, at its end it is reuse', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '30' })
  const a = await login(app)
  const aNext = await refreshOk(t, app, a.tokens.refresh_token)
  // The test clock runs with real time, so "inside" keeps a margin for a slow machine.
  clock.advance(25)
  t.equal((await refreshOk(t, app, a.tokens.refresh_token, '25 s after retirement')).refresh_token, aNext.refresh_token)

  const b = await login(app)
  await refreshOk(t, app, b.tokens.refresh_token)
  clock.advance(30)
  assertInvalidGrant(t, await refresh(app, b.tokens.refresh_token), '30 s after retirement')
  t.equal((await app.db.session.findUniqueOrThrow({ where: { id: b.sessionId } })).revokedReason, 'refresh_token_reused')
})

t.test('REFRESH_GRACE_SECONDS=0: any second presentation is reuse', async (t) => {
  const { app } = await testApp(t, { REFRESH_GRACE_SECONDS: '0' })
  const { userId, sessionId, tokens } = await login(app)
  const successor = await refreshOk(t, app, tokens.refresh_token)
  assertInvalidGrant(t, await refresh(app, tokens.refresh_token), 'immediate second presentation')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.ok(session.revokedAt)
  t.equal(session.revokedReason, 'refresh_token_reused')
  t.equal(await app.db.auditEvent.count({ where: { userId, type: 'refresh_token_reused' } }), 1)
  assertInvalidGrant(t, await refresh(app, successor.refresh_token), 'the successor is dead')
})

t.test('idle expiry: no refresh for longer than REFRESH_IDLE_TTL_SECONDS', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_IDLE_TTL_SECONDS: '1000', REFRESH_ABSOLUTE_TTL_SECONDS: '10000' })
  const a = await login(app)
  clock.advance(950)
  await refreshOk(t, app, a.tokens.refresh_token, 'refresh at 950 s of 1000')

  const b = await login(app)
  clock.advance(1001)
  assertInvalidGrant(t, await refresh(app, b.tokens.refresh_token), 'refresh at 1001 s of 1000')
  t.equal((await family(app, b.sessionId)).generation, 0, 'no successor: the expired token is not retired')
  t.equal(await app.db.auditEvent.count({ where: { userId: b.userId, type: 'refresh_token_reused' } }), 0, 'expiry is not reuse')
})

t.test('rotation extends the idle expiry', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_IDLE_TTL_SECONDS: '1000', REFRESH_ABSOLUTE_TTL_SECONDS: '10000' })
  const { sessionId, tokens } = await login(app)
  const before = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.equal(before.idleExpiresAt.getTime() - before.createdAt.getTime(), 1_000_000, 'idle expiry: 1000 s after login')

  clock.advance(600)
  const second = await refreshOk(t, app, tokens.refresh_token, 'at 600 s')
  const after = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.equal(after.idleExpiresAt.getTime() - after.lastRefreshedAt.getTime(), 1_000_000, 'idle expiry: 1000 s after the rotation')
  t.ok(after.idleExpiresAt > before.idleExpiresAt, 'moved forward')
  const moved = after.lastRefreshedAt.getTime() - before.lastRefreshedAt.getTime()
  t.ok(moved >= 600_000 && moved < 660_000, `last refreshed recorded (${moved} ms later; the test clock runs with real time)`)

  clock.advance(600)
  // 1200 s after login: past the first idle expiry, inside the extended one.
  const third = await refreshOk(t, app, second.refresh_token, 'at 1200 s, past the original idle expiry')
  clock.advance(900)
  await refreshOk(t, app, third.refresh_token, 'at 2100 s')
})

t.test('rotation never extends the absolute expiry', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_IDLE_TTL_SECONDS: '1000', REFRESH_ABSOLUTE_TTL_SECONDS: '2500' })
  const { sessionId, tokens } = await login(app)
  const start = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.equal(start.absoluteExpiresAt.getTime() - start.createdAt.getTime(), 2_500_000)

  let current = tokens.refresh_token
  for (let elapsed = 600; elapsed <= 2400; elapsed += 600) {
    clock.advance(600)
    current = (await refreshOk(t, app, current, `refresh at ${elapsed} s`)).refresh_token
    const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
    t.same(session.absoluteExpiresAt, start.absoluteExpiresAt, `absolute expiry unchanged at ${elapsed} s`)
    t.ok(session.idleExpiresAt <= session.absoluteExpiresAt, 'idle expiry never beyond the absolute one')
  }
  clock.advance(600)
  // 3000 s: within 1000 s of the last refresh, past the 2500 s absolute lifetime.
  assertInvalidGrant(t, await refresh(app, current), 'refresh at 3000 s')
  t.equal((await family(app, sessionId)).generation, 4, 'not rotated')
})

t.test('a refresh token only refreshes for the client it was issued to', async (t) => {
  const { app } = await testApp(t)
  const { sessionId, tokens } = await login(app)
  for (const clientId of ['web', 'admin']) {
    const response = await refresh(app, tokens.refresh_token, { clientId, headers: SPA_HEADERS })
    assertInvalidGrant(t, response, `presented by ${clientId}`)
    t.equal((await family(app, sessionId)).generation, 0, `not retired by the ${clientId} attempt`)
  }
  const unknown = await refresh(app, tokens.refresh_token, { clientId: 'nobody' })
  t.equal(unknown.statusCode, 401)
  t.equal(json(unknown).error, 'invalid_client')
  t.equal((await family(app, sessionId)).revokedAt, null, 'not revoked')

  const own = await refresh(app, tokens.refresh_token, { clientId: 'mobile' })
  t.equal(own.statusCode, 200, 'still refreshes for its own client')
})

t.test('bad refresh tokens are invalid_grant', async (t) => {
  const { app } = await testApp(t)
  for (const token of ['A'.repeat(43), 'A'.repeat(92), 'not-a-token', '', "' OR 1=1 --", 'x'.repeat(256)]) {
    const response = await refresh(app, token)
    t.equal(response.statusCode, 400, `${JSON.stringify(token.slice(0, 20))}: 400 (${response.body})`)
    t.match(json(response).error, /^(invalid_grant|invalid_request)$/)
  }
  assertInvalidGrant(t, await refresh(app, 'A'.repeat(43)), 'a token of the layout before DESIGN §3.13 (the upgrade ended its session)')
  assertInvalidGrant(t, await refresh(app, 'A'.repeat(92)), 'today\'s shape, no valid MAC')
  const missing = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token' } })
  t.equal(missing.statusCode, 400)
  t.equal(json(missing).error, 'invalid_request')
})

t.test('a disabled user cannot refresh', async (t) => {
  const { app } = await testApp(t)
  const { userId, sessionId, tokens } = await login(app)
  await app.db.user.update({ where: { id: userId }, data: { disabled: true } })
  assertInvalidGrant(t, await refresh(app, tokens.refresh_token), 'disabled user')
  t.equal((await family(app, sessionId)).generation, 0, 'not rotated')
})

t.test('raw refresh tokens never appear in the database', async (t) => {
  const { app, clock } = await testApp(t, { REFRESH_GRACE_SECONDS: '10' })
  const seen: string[] = []
  // A family that rotates, retries in the window and then is reused.
  const a = await login(app)
  seen.push(a.tokens.refresh_token)
  const a1 = await refreshOk(t, app, a.tokens.refresh_token)
  seen.push(a1.refresh_token)
  seen.push((await refreshOk(t, app, a.tokens.refresh_token, 'grace retry')).refresh_token)
  const a2 = await refreshOk(t, app, a1.refresh_token)
  seen.push(a2.refresh_token)
  clock.advance(20)
  assertInvalidGrant(t, await refresh(app, a.tokens.refresh_token), 'reuse')
  // Another that is revoked through RFC 7009 and by logout.
  const b = await login(app)
  seen.push(b.tokens.refresh_token)
  const revoke = await app.inject({ method: 'POST', url: '/auth/revoke', payload: { token: b.tokens.refresh_token } })
  t.equal(revoke.statusCode, 200)
  const c = await login(app)
  seen.push(c.tokens.refresh_token)
  // The clock jumped 20 s: let the revocation list catch up, as its timer would.
  await app.revocations.sync()
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${c.tokens.access_token}` } })
  t.equal(logout.statusCode, 204)

  const dump: string[] = []
  for (const table of ['sessions', 'audit_events', 'users', 'signing_keys', 'api_keys']) {
    const rows = await app.db.$queryRawUnsafe<{ row: string }[]>(`SELECT row_to_json(t)::text AS row FROM ${table} AS t`)
    for (const { row } of rows) dump.push(row)
  }
  const everything = dump.join('\n')
  t.ok(everything.includes(a.userId), 'the dump holds the rows written above')
  t.ok(dump.length > 10)
  for (const token of new Set(seen)) {
    const raw = Buffer.from(token, 'base64url')
    const forms = [
      token,
      raw.toString('hex'),
      raw.toString('base64'),
      createHash('sha256').update(token).digest('hex'),
      createHash('sha256').update(raw).digest('hex'),
    ]
    for (const form of forms) t.notOk(everything.toLowerCase().includes(form.toLowerCase()), `no form of the token in the database (${form.slice(0, 8)}…)`)
  }
  // What is stored of a live token is a keyed hash, not a plain digest of it.
  const live = await family(app, a.sessionId)
  t.equal(live.generation, 2)
  for (const digest of [createHash('sha256').update(a2.refresh_token).digest(), createHash('sha256').update(Buffer.from(a2.refresh_token, 'base64url')).digest()]) {
    t.notSame(Buffer.from(live.refreshTokenHash!), digest, 'the hash is keyed')
  }
})
