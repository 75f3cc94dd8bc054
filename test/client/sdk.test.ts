import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import {
  AuthClient,
  InvalidCredentialsError,
  MemoryStore,
  RateLimitedError,
  SessionExpiredError,
  SessionReusedError,
  type SessionEndReason,
} from '../../src/client/index.js'
import { buildTestApp, type TestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'

/**
 * The client SDK (src/client) in Node against the running service on a real
 * socket, body transport (mobile client) with a memory store: single-flight
 * refresh under 100 concurrent calls, the 401 retry, typed errors.
 */

const database = await createTestDatabase()
t.teardown(() => database.drop())

const PASSWORD = 'a fine passphrase'
let counter = 0
const uniqueEmail = (label: string) => `${label}-${++counter}-${Date.now()}@sdk.test`

interface Server {
  test: TestApp
  baseUrl: string
}

async function startServer (t: Test, env: Record<string, string> = {}): Promise<Server> {
  const test = await buildTestApp(env, { database })
  t.teardown(test.close)
  await test.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = test.app.server.address() as AddressInfo
  return { test, baseUrl: `http://127.0.0.1:${port}` }
}

/** A fetch that counts refresh-grant requests to the token endpoint, and sign-ins (code exchanges). */
function countingFetch () {
  const counts = { refresh: 0, signIn: 0, total: 0 }
  const wrapped: typeof fetch = async (input, init) => {
    counts.total++
    const url = String(input)
    if (url.endsWith('/auth/token') && typeof init?.body === 'string') {
      const grant = (JSON.parse(init.body) as { grant_type?: string }).grant_type
      if (grant === 'refresh_token') counts.refresh++
      if (grant === 'authorization_code') counts.signIn++
    }
    return fetch(input, init)
  }
  return { fetch: wrapped, counts }
}

/** A clock the client reads, moved by hand. */
function clientClock () {
  let offset = 0
  return {
    now: () => Date.now() + offset,
    advance: (seconds: number) => {
      offset += seconds * 1000
    },
  }
}

function mobileClient (server: Server, extra: Partial<ConstructorParameters<typeof AuthClient>[0]> = {}) {
  const counting = countingFetch()
  const store = new MemoryStore()
  const clock = clientClock()
  const client = new AuthClient({
    baseUrl: server.baseUrl,
    clientId: 'mobile',
    transport: 'body',
    store,
    fetch: counting.fetch,
    now: clock.now,
    ...extra,
  })
  return { client, store, clock, counts: counting.counts }
}

t.test('100 concurrent authenticated calls at token expiry make exactly one refresh request', async (t) => {
  const server = await startServer(t)
  const { client, clock, counts } = mobileClient(server)
  const user = await client.signUp(uniqueEmail('concurrent'), PASSWORD)
  t.equal(counts.refresh, 0)

  clock.advance(600) // the client's view: the access token has expired
  const results = await Promise.all(
    Array.from({ length: 100 }, () => client.request<{ id: string }>('/users/me'))
  )
  t.equal(counts.refresh, 1, 'one refresh request for 100 concurrent calls')
  t.ok(results.every((me) => me.id === user.id), 'all 100 calls succeeded as the user')
  t.comment(`refresh requests seen for 100 concurrent calls at expiry: ${counts.refresh}`)

  // And a later expiry refreshes again, once.
  clock.advance(600)
  await Promise.all(Array.from({ length: 20 }, () => client.request('/users/me')))
  t.equal(counts.refresh, 2)
})

t.test('a token the server refuses before its expiry: 401, one shared refresh, one retry each', async (t) => {
  const server = await startServer(t)
  const { client, counts } = mobileClient(server)
  const user = await client.signUp(uniqueEmail('server-expiry'), PASSWORD)
  const token = await client.getAccessToken()
  // The server stops accepting this access token while the client still
  // thinks it fresh: the role changes behind the session's back (straight in
  // the database, which ends no session, unlike the admin API), so tokens
  // minted with the old role are refused (DESIGN §3.5.7) and a refresh mints
  // one with the new role.
  const changedAt = new Date(server.test.clock.now())
  await server.test.app.db.user.update({ where: { id: user.id }, data: { role: 'admin', authChangedAt: changedAt } })
  server.test.app.revocations.userChanged(user.id, { role: 'admin', disabled: false, changedAt })
  const probe = await fetch(`${server.baseUrl}/users/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(probe.status, 401, 'the held token is refused')
  const before = counts.total
  const results = await Promise.all(Array.from({ length: 100 }, () => client.request<{ id: string }>('/users/me')))
  t.equal(counts.refresh, 1, 'one refresh for 100 refused calls')
  t.ok(results.every((me) => me.id === user.id))
  // Each call was sent, refused, and retried once; the one refresh besides.
  t.equal(counts.total - before, 201, 'each call sent twice, plus one refresh')
})

t.test('a reused refresh token surfaces as SessionReusedError and ends the session', async (t) => {
  const server = await startServer(t, { REFRESH_GRACE_SECONDS: '2' })
  const { client, store } = mobileClient(server)
  const ends: SessionEndReason[] = []
  client.onSessionEnd((reason) => ends.push(reason))
  await client.signUp(uniqueEmail('reuse'), PASSWORD)
  const retired = (await store.get())!
  await client.refresh()
  const successor = (await store.get())!
  t.not(successor, retired, 'rotated')

  // Inside the grace window the retired token still answers (same successor): no error.
  const graceClient = mobileClient(server).client
  const graceStore = (graceClient as unknown as { store: MemoryStore }).store
  graceStore.set(retired)
  await graceClient.refresh()
  t.equal(graceStore.get(), successor, 'the grace answer is the same successor')

  server.test.clock.advance(3) // past the grace window
  store.set(retired) // e.g. a stale copy restored from a backup, or a stolen token
  const error = await client.refresh().catch((e: unknown) => e)
  t.type(error, SessionReusedError)
  t.equal((error as SessionReusedError).code, 'session_reused')
  t.same(ends, ['reused'], 'onSessionEnd told why')
  t.equal(store.get(), null, 'the store is emptied')
  t.notOk(client.isSignedIn)

  // The whole session is revoked: the successor is dead too.
  const other = mobileClient(server)
  other.store.set(successor)
  const dead = await other.client.refresh().catch((e: unknown) => e)
  t.type(dead, SessionExpiredError, 'the live successor was revoked with the session')
})

t.test('typed errors: wrong password, rate limit with retry-after, calls after logout', async (t) => {
  const server = await startServer(t, { AUTH_RATE_LIMIT_PER_MINUTE: '3' })
  const email = uniqueEmail('errors')
  const { client, counts } = mobileClient(server)
  await client.signUp(email, PASSWORD)

  const wrong = await client.login(email, 'not the password').catch((e: unknown) => e)
  t.type(wrong, InvalidCredentialsError)
  t.equal(counts.signIn, 0, 'a refused password: no code to exchange')
  await client.login(email, PASSWORD) // the third attempt (sign-up counts for the IP, not this account)
  t.equal(counts.signIn, 1, 'the sign-in exchanged its code')
  await client.login(email, 'not the password').catch(() => undefined)
  const limited = await client.login(email, PASSWORD).catch((e: unknown) => e)
  t.type(limited, RateLimitedError)
  t.ok((limited as RateLimitedError).retryAfterSeconds >= 1 && (limited as RateLimitedError).retryAfterSeconds <= 60, 'retry-after in seconds')

  t.ok(client.isSignedIn)
  await client.logout()
  t.notOk(client.isSignedIn)
  const after = await client.request('/users/me').catch((e: unknown) => e)
  t.type(after, SessionExpiredError, 'signed out: a typed error, no request with a stale token')
  t.equal(await client.restore(), false)
})

t.test('restore signs back in from the stored refresh token; logout revokes it server-side', async (t) => {
  const server = await startServer(t)
  const first = mobileClient(server)
  const user = await first.client.signUp(uniqueEmail('restore'), PASSWORD)
  const saved = (await first.store.get())!

  // A new process with the same secure store.
  const second = mobileClient(server)
  second.store.set(saved)
  t.equal(await second.client.restore(), true)
  t.equal((await second.client.request<{ id: string }>('/users/me')).id, user.id)
  t.equal(second.client.claims?.sub, user.id)

  await second.client.logout()
  const third = mobileClient(server)
  third.store.set((await second.store.get()) ?? saved)
  t.equal(await third.client.restore(), false, 'the session is gone')
})
