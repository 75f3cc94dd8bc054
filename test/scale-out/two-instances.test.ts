import { randomBytes } from 'node:crypto'
import t from 'tap'
import { buildTestApp, json, type TestApp } from '../helpers/app.js'
import { connectRedis, REDIS_URL } from '../helpers/redis.js'
import { createTestDatabase } from '../helpers/database.js'
import * as users from '../helpers/users.js'
import type { Tokens } from '../helpers/users.js'

/**
 * Scale-out (DESIGN §3.9): two instances of the service on one database (and
 * one Redis for the rate-limit counters), as behind a load balancer.
 *
 * - rate limits are shared: attempts alternated between the instances count
 *   against one budget;
 * - a session revoked on one instance is refused by the other within 1 s
 *   (its revocation list polls every 500 ms, DESIGN §3.5.7);
 * - a key rotated on one instance is published by the other before it signs,
 *   and tokens it then signs verify on the other;
 * - concurrent refreshes of one token split across both instances yield one
 *   successor.
 *
 * Runs on the embedded database or on TEST_DATABASE_URL. Every run uses its
 * own client addresses and emails, so counters left in a shared Redis by an
 * earlier run never collide with these.
 */

const LIMIT = 3
const run = randomBytes(4).toString('hex')
let ipCounter = 0
/** A client address no other test or run uses: the rate-limit keys of this run. */
const freshIp = () => `fd00:5ca1:${run.slice(0, 4)}:${run.slice(4)}::${(++ipCounter).toString(16)}`
let emailCounter = 0
const freshEmail = (label: string) => `${label}-${++emailCounter}-${run}@example.test`
const PASSWORD = 'a perfectly fine passphrase'

const redis = await connectRedis()

const database = await createTestDatabase()
const env: Record<string, string> = {
  AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT),
  KEY_PUBLISH_LEAD_SECONDS: '4',
  JWKS_MAX_AGE_SECONDS: '2',
  ...(redis ? { REDIS_URL } : {}),
}
const a = await buildTestApp(env, { database })
const b = await buildTestApp(env, { database })
t.teardown(async () => {
  await a.close()
  await b.close()
  await database.drop()
  if (redis) {
    // Remove only this run's counters.
    const mine: string[] = []
    for await (const keys of redis.scanStream({ match: 'token-auth:rl:*', count: 1000 }) as AsyncIterable<string[]>) {
      mine.push(...keys.filter((key) => key.includes(run)))
    }
    if (mine.length > 0) await redis.del(...mine)
    await redis.quit()
  }
})

/** A user of this run's own address and email (the rate-limit keys), signed up on `app`. */
const signup = (app: TestApp) => users.signup(app.app, { email: freshEmail('user'), password: PASSWORD, remoteAddress: freshIp() })

const me = (app: TestApp, accessToken: string) => users.me(app.app, accessToken)

t.test('rate limits are shared through Redis', { skip: redis ? false : `Redis is not reachable at ${REDIS_URL}` }, async (t) => {
  const ip = freshIp()
  const email = freshEmail('target')
  const guess = (app: TestApp, username = email) =>
    app.app.inject({ method: 'POST', url: '/auth/token', remoteAddress: ip, payload: { grant_type: 'password', username, password: 'not the password' } })
  // LIMIT attempts (wrong password: 400 invalid_grant) alternated between the instances use up one budget...
  for (let i = 0; i < LIMIT; i++) t.equal((await guess(i % 2 === 0 ? a : b)).statusCode, 400, `attempt ${i + 1} on ${i % 2 === 0 ? 'A' : 'B'}`)
  // ...so the next one is refused on either, though neither saw LIMIT on its own.
  const limitedA = await guess(a)
  const limitedB = await guess(b)
  t.equal(limitedA.statusCode, 429, 'A refuses the next attempt')
  t.equal(limitedB.statusCode, 429, 'B refuses the next attempt')
  t.ok(Number(limitedB.headers['retry-after']) >= 1, 'with Retry-After')
  // The per-account limit is shared too: another address, the same account.
  const other = freshIp()
  const fromOther = (app: TestApp) =>
    app.app.inject({ method: 'POST', url: '/auth/token', remoteAddress: other, payload: { grant_type: 'password', username: email, password: 'x' } })
  t.equal((await fromOther(b)).statusCode, 429, 'the account budget, spent through both, is spent on B from a new address')
})

t.test('a session revoked on one instance is refused on the other within 1 s', async (t) => {
  const user = await signup(a)
  t.equal((await me(b, user.access_token)).statusCode, 200, 'B accepts the token A issued')
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${user.access_token}` } })
  t.equal(logout.statusCode, 204, 'signed out on A')
  const revokedAt = Date.now()
  t.equal((await me(a, user.access_token)).statusCode, 401, 'A refuses it at once')
  let refusedAfter: number | null = null
  while (Date.now() - revokedAt < 3_000) {
    const response = await me(b, user.access_token)
    if (response.statusCode === 401) {
      refusedAfter = Date.now() - revokedAt
      t.match(json(response), { code: 'invalid_token' })
      break
    }
    t.equal(response.statusCode, 200)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.not(refusedAfter, null, 'B refuses the token')
  t.ok(refusedAfter !== null && refusedAfter <= 1_000, `B refused it ${refusedAfter} ms after the revocation (≤ 1000 ms)`)
  // The refresh token of that session is refused by B as well.
  const refresh = await b.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh_token } })
  t.equal(refresh.statusCode, 400)
  t.match(json(refresh), { error: 'invalid_grant' })
})

t.test('a key rotated on one instance is published by the other, and its tokens verify there', async (t) => {
  const jwks = async (app: TestApp) => json<{ keys: { kid: string }[] }>(await app.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).keys.map((k) => k.kid)
  const before = await jwks(b)
  const { kid, activatesAt } = await a.app.keys.rotate()
  t.notOk(before.includes(kid), 'the new key is not published before the rotation')
  t.ok((await jwks(a)).includes(kid), 'A publishes it at once')
  const rotatedAt = Date.now()
  // B reloads keys every (KEY_PUBLISH_LEAD_SECONDS - JWKS_MAX_AGE_SECONDS) / 2 = 1 s.
  let publishedAfter: number | null = null
  while (Date.now() - rotatedAt < 4_000) {
    if ((await jwks(b)).includes(kid)) {
      publishedAfter = Date.now() - rotatedAt
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.not(publishedAfter, null, 'B publishes the new key')
  t.ok(
    publishedAfter !== null && rotatedAt + publishedAfter <= activatesAt.getTime() - 2_000,
    `B published it ${publishedAfter} ms after the rotation, at least JWKS_MAX_AGE_SECONDS before it signs`
  )
  // Once the new key signs (KEY_PUBLISH_LEAD_SECONDS after the rotation), A's tokens carry its kid and B verifies them.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, activatesAt.getTime() - Date.now()) + 50))
  const user = await signup(a)
  const header = JSON.parse(Buffer.from(user.access_token.split('.')[0]!, 'base64url').toString()) as { kid: string }
  t.equal(header.kid, kid, 'A signs with the new key')
  const accepted = await me(b, user.access_token)
  t.equal(accepted.statusCode, 200, 'B accepts a token signed with the key A rotated in')
})

t.test('concurrent refreshes of one token split across both instances yield one successor', async (t) => {
  const user = await signup(a)
  const refresh = (app: TestApp) =>
    app.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: user.refresh_token } })
  const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(i % 2 === 0 ? a : b)))
  const ok = responses.filter((r) => r.statusCode === 200)
  t.ok(ok.length >= 1, `${ok.length} of 20 answered 200`)
  for (const r of responses.filter((r) => r.statusCode !== 200)) {
    t.equal(r.statusCode, 400, 'any other answer is a refusal')
    t.match(json(r), { error: 'invalid_grant' })
  }
  // Every 200 carries the one successor (grace retries answer with the family's live token).
  const successors = new Set(ok.map((r) => json<Tokens>(r).refresh_token))
  t.equal(successors.size, 1, 'one successor token handed out')

  const presented = a.app.sessions.readRefreshToken(user.refresh_token)!
  const session = await a.app.db.session.findUnique({ where: { id: presented.sessionId } })
  t.equal(session?.generation, presented.generation + 1, 'the presented token was retired by exactly one rotation')
  t.equal(a.app.sessions.readRefreshToken([...successors][0]!)?.generation, presented.generation + 1, 'the successor handed out is that rotation\'s')
  t.equal(session?.revokedAt, null, 'the session is not revoked as a reuse')
  // The successor rotates on either instance.
  const next = await b.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: [...successors][0]! } })
  t.equal(next.statusCode, 200, 'the successor rotates on B')
})
