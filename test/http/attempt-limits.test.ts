import { createHash, randomBytes } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { normalizeEmail } from '../../src/features/accounts/accounts.js'
import { buildTestApp, json, type TestApp } from '../helpers/app.js'
import { connectRedis, REDIS_URL } from '../helpers/redis.js'
import * as users from '../helpers/users.js'
import { signupRequest } from '../helpers/users.js'

/**
 * AUTH_RATE_LIMIT_PER_MINUTE (DESIGN §3.4, §3.10): password grants and
 * sign-ups, per client IP and per account; 429 with Retry-After; refresh
 * grants untouched; counters shared through Redis when REDIS_URL is set.
 *
 * Every run uses its own client addresses and emails (they carry `run`), so
 * counters left in a shared Redis by an earlier run never collide with these.
 */

const LIMIT = 3
const run = randomBytes(4).toString('hex')
let ipCounter = 0
/** A client address no other test or run uses. */
const freshIp = () => `fd00:${run.slice(0, 4)}:${run.slice(4)}::${(++ipCounter).toString(16)}`
let emailCounter = 0
const freshEmail = (label: string) => `${label}-${++emailCounter}-${run}@example.test`
const PASSWORD = 'a perfectly fine passphrase'

const local = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
t.teardown(() => local.close())

function passwordGrant (app: TestApp, ip: string, username: string, password = 'not the password', form = false) {
  const body = { grant_type: 'password', username, password }
  return app.app.inject({
    method: 'POST',
    url: '/auth/token',
    remoteAddress: ip,
    ...(form
      ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(body).toString() }
      : { payload: body }),
  })
}

/** POST /auth/signup from the client address `ip`, answered as it is. */
const signup = (app: TestApp, ip: string, email: string) => signupRequest(app.app, { email, password: PASSWORD }, { remoteAddress: ip })

async function newUser (app: TestApp): Promise<{ email: string; refreshToken: string }> {
  const user = await users.signup(app.app, { email: freshEmail('user'), password: PASSWORD, remoteAddress: freshIp() })
  return { email: user.email, refreshToken: user.refresh_token }
}

/** A 429 as the token endpoint answers it: Retry-After and an RFC 6749 error body. */
function assertOAuthLimited (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.statusCode, 429, `${what}: 429`)
  const retryAfter = Number(response.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${what}: Retry-After ${String(response.headers['retry-after'])} s`)
  t.equal(response.headers['cache-control'], 'no-store')
  t.match(response.headers['content-type'], /^application\/json/)
  const body = json(response)
  t.type(body.error, 'string', `${what}: OAuth error code`)
  t.type(body.error_description, 'string')
  t.same(Object.keys(body).sort(), ['error', 'error_description'], 'the RFC 6749 error shape only')
}

t.test('per IP: the 4th password grant from one address in a minute gets 429', async (t) => {
  const { email } = await newUser(local)
  const ip = freshIp()
  for (let i = 0; i < LIMIT; i++) {
    // Different accounts, so only the per-IP counter can trip.
    const response = await passwordGrant(local, ip, freshEmail('nobody'), 'whatever it is', i % 2 === 1)
    t.equal(response.statusCode, 400, `attempt ${i + 1} is judged on its merits`)
    t.equal(json(response).error, 'invalid_grant')
  }
  assertOAuthLimited(t, await passwordGrant(local, ip, freshEmail('nobody')), '4th attempt')
  assertOAuthLimited(t, await passwordGrant(local, ip, email, PASSWORD, true), 'even the right password, form-encoded,')

  // Another address is not affected.
  const other = await passwordGrant(local, freshIp(), email, PASSWORD)
  t.equal(other.statusCode, 200, 'the real user from elsewhere still logs in')
})

t.test('per account: attempts on one account from many addresses are limited too', async (t) => {
  const { email } = await newUser(local)
  // Spellings that name the same account share its counter.
  const spellings = [email, email.toUpperCase(), `  ${email}  `]
  for (let i = 0; i < LIMIT; i++) {
    const response = await passwordGrant(local, freshIp(), spellings[i]!)
    t.equal(response.statusCode, 400, `guess ${i + 1} from a new address`)
  }
  assertOAuthLimited(t, await passwordGrant(local, freshIp(), email), '4th guess from a 4th address')
  assertOAuthLimited(t, await passwordGrant(local, freshIp(), email.toUpperCase(), PASSWORD), 'any spelling, any password')

  // Other accounts from a fresh address are unaffected.
  const { email: bystander } = await newUser(local)
  t.equal((await passwordGrant(local, freshIp(), bystander, PASSWORD)).statusCode, 200)
})

t.test('refresh grants are not limited', async (t) => {
  const { email, refreshToken } = await newUser(local)
  const ip = freshIp()
  // Exhaust both the address's and the account's password-grant budget.
  for (let i = 0; i < LIMIT; i++) await passwordGrant(local, ip, email)
  assertOAuthLimited(t, await passwordGrant(local, ip, email, PASSWORD), 'password grant')

  let token = refreshToken
  for (let i = 0; i < 3 * LIMIT; i++) {
    const response = await local.app.inject({
      method: 'POST',
      url: '/auth/token',
      remoteAddress: ip,
      payload: { grant_type: 'refresh_token', refresh_token: token },
    })
    t.equal(response.statusCode, 200, `refresh ${i + 1} from the limited address`)
    token = json<{ refresh_token: string }>(response).refresh_token
  }
  // Bad refresh tokens are not counted either: they cannot guess a password.
  for (let i = 0; i < LIMIT + 1; i++) {
    const response = await local.app.inject({
      method: 'POST',
      url: '/auth/token',
      remoteAddress: freshIp(),
      payload: { grant_type: 'refresh_token', refresh_token: randomBytes(32).toString('base64url') },
    })
    t.equal(response.statusCode, 400)
    t.equal(json(response).error, 'invalid_grant')
  }
})

t.test('sign-up is limited per IP (and per email)', async (t) => {
  const ip = freshIp()
  for (let i = 0; i < LIMIT; i++) {
    t.equal((await signup(local, ip, freshEmail('signup'))).statusCode, 201, `sign-up ${i + 1}`)
  }
  const limited = await signup(local, ip, freshEmail('signup'))
  t.equal(limited.statusCode, 429, '4th sign-up from one address')
  t.match(String(limited.headers['retry-after']), /^[1-9]\d*$/)
  t.match(json(limited), { statusCode: 429, code: 'rate_limited' })
  t.equal((await signup(local, freshIp(), freshEmail('signup'))).statusCode, 201, 'another address may still sign up')

  // One email probed from many addresses (account enumeration through 409s).
  const email = freshEmail('probe')
  t.equal((await signup(local, freshIp(), email)).statusCode, 201)
  for (let i = 1; i < LIMIT; i++) t.equal((await signup(local, freshIp(), email)).statusCode, 409)
  t.equal((await signup(local, freshIp(), email)).statusCode, 429, 'the 4th attempt on one email')
})

const probe = await connectRedis()

t.test('with REDIS_URL two instances share the counters', { skip: probe ? false : `Redis is not reachable at ${REDIS_URL}` }, async (t) => {
  if (!probe) return
  t.teardown(async () => {
    // Remove only this run's counters.
    const mine: string[] = []
    const marker = `fd00:${run.slice(0, 4)}:${run.slice(4)}`
    for await (const keys of probe.scanStream({ match: 'token-auth:rl:*', count: 1000 }) as AsyncIterable<string[]>) {
      mine.push(...keys.filter((key) => key.includes(run) || key.includes(marker)))
    }
    if (mine.length > 0) await probe.del(...mine)
    await probe.quit()
  })

  const env = { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT), REDIS_URL }
  const one = await buildTestApp(env, { database: local.database })
  t.teardown(() => one.close())
  const two = await buildTestApp(env, { database: local.database })
  t.teardown(() => two.close())

  // Per IP, alternating instances.
  const ip = freshIp()
  const instances = [one, two, one]
  for (let i = 0; i < LIMIT; i++) {
    t.equal((await passwordGrant(instances[i]!, ip, freshEmail('nobody'))).statusCode, 400, `attempt ${i + 1}`)
  }
  assertOAuthLimited(t, await passwordGrant(two, ip, freshEmail('nobody')), 'per IP, counted on both instances')

  // Per account, from different addresses on different instances.
  const { email } = await newUser(one)
  for (let i = 0; i < LIMIT; i++) {
    t.equal((await passwordGrant(instances[i]!, freshIp(), email)).statusCode, 400)
  }
  assertOAuthLimited(t, await passwordGrant(two, freshIp(), email, PASSWORD), 'per account, counted on both instances')

  // Sign-ups too.
  const signupIp = freshIp()
  for (let i = 0; i < LIMIT; i++) t.equal((await signup(instances[i]!, signupIp, freshEmail('shared'))).statusCode, 201)
  t.equal((await signup(two, signupIp, freshEmail('shared'))).statusCode, 429)

  // The counters really are in Redis, the account's under a hash of its address.
  const keys: string[] = []
  for await (const batch of probe.scanStream({ match: 'token-auth:rl:*', count: 1000 }) as AsyncIterable<string[]>) keys.push(...batch)
  const accountHash = createHash('sha256').update(normalizeEmail(email)).digest('base64url')
  t.ok(keys.some((key) => key.includes(accountHash)), 'the per-account counter is stored under the token-auth:rl: prefix')
  t.notOk(keys.some((key) => key.includes(run)), 'no key holds an email address in clear')
})

t.test('a Redis outage fails open (nobody locked out) and the app still shuts down', async (t) => {
  // Port 1 on loopback: nothing listens there, connections are refused at once.
  const down = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT), REDIS_URL: 'redis://127.0.0.1:1' }, { database: local.database })
  let closed = false
  t.teardown(async () => {
    if (!closed) await down.close()
  })
  const { email } = await newUser(down)
  const ip = freshIp()
  for (let i = 0; i < LIMIT + 2; i++) {
    t.equal((await passwordGrant(down, ip, email, PASSWORD)).statusCode, 200, `login ${i + 1} while the counters are unavailable`)
  }
  await t.resolves(down.close(), 'closes although quit() cannot reach Redis')
  closed = true
})
