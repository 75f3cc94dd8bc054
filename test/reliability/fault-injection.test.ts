import { createServer, connect, type Server, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { RECENT_RETIREMENTS } from '../../src/features/sessions/sessions.js'
import { buildTestApp, json, type TestApp } from '../helpers/app.js'
import { createTestDatabase, realPostgresUrl, withClient, type TestDatabase } from '../helpers/database.js'
import { refresh, signup } from '../helpers/users.js'

/**
 * Fault injection against a real Postgres (DESIGN §4: a database outage gets
 * 503 and recovers by itself, with nothing half written). The app reaches
 * its database through a small TCP proxy inside this test; under a steady
 * refresh load the proxy cuts every connection and refuses new ones for a
 * few seconds, then lets them through again. A second fault terminates the
 * test database's backends from a separate admin connection
 * (pg_terminate_backend). A third is a partition longer than the grace
 * window: bytes stop flowing, new connections hang, nothing is reset. The machine's Postgres itself is never restarted:
 * other test files use it concurrently.
 *
 * Checked: requests during the outage fail fast with 503 (no hang, no 500);
 * the service recovers by itself once the database is back; afterwards no
 * session has two live refresh tokens, no retired token lacks a successor,
 * no session was revoked for reuse, every refresh acknowledged with 200 is
 * in the database, and every client's token still refreshes.
 */

if (!realPostgresUrl) {
  t.plan(0, 'fault injection needs a real Postgres: set TEST_DATABASE_URL (the embedded PGlite runs inside the test process and cannot be cut)')
  process.exit(0)
}

const USERS = 16
const WORKERS = 8
const OUTAGE_MS = 3_000
/** A request during the outage must not wait longer than the pool's connection timeout plus slack. */
const FAIL_FAST_MS = 6_000
const SHORT_PARTITION_MS = 7_000
const LONG_PARTITION_MS = 13_000
/** In a partition a query already sent waits for the pool's query timeout (10 s); nothing may wait much longer. */
const PARTITION_BOUND_MS = 13_000

/** A TCP proxy that can drop every connection and refuse new ones while cut. */
class CuttableProxy {
  private server!: Server
  private readonly sockets = new Set<Socket>()
  private cutting = false
  private frozen = false
  private readonly held = new Set<Socket>()
  port = 0
  connections = 0
  refused = 0

  constructor (
    private readonly targetHost: string,
    private readonly targetPort: number
  ) {}

  async start (): Promise<void> {
    this.server = createServer((client) => {
      if (this.frozen) {
        // A partition: the connection is accepted and then nothing ever answers.
        this.refused++
        this.held.add(client)
        client.on('error', () => client.destroy())
        client.pause()
        return
      }
      if (this.cutting) {
        this.refused++
        client.destroy()
        return
      }
      this.connections++
      const upstream = connect(this.targetPort, this.targetHost)
      for (const socket of [client, upstream]) {
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
        socket.on('error', () => socket.destroy())
      }
      client.on('data', (chunk) => {
        if (!this.frozen) upstream.write(chunk)
      })
      upstream.on('data', (chunk) => {
        if (!this.frozen) client.write(chunk)
      })
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as { port: number }).port
  }

  /** Drops every open connection (as a crashed server or a cut network does) and refuses new ones. */
  cut (): void {
    this.cutting = true
    for (const socket of this.sockets) socket.destroy()
  }

  restore (): void {
    this.cutting = false
  }

  /** A network partition: bytes stop flowing both ways and new connections hang; nothing is reset. */
  freeze (): void {
    this.frozen = true
  }

  /** The partition heals after the connections timed out: they are gone, new ones work. */
  thaw (): void {
    for (const socket of [...this.sockets, ...this.held]) socket.destroy()
    this.held.clear()
    this.frozen = false
  }

  async close (): Promise<void> {
    this.thaw()
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

const database: TestDatabase = await createTestDatabase()
const target = new URL(database.url)
const proxy = new CuttableProxy(target.hostname, Number(target.port || 5432))
await proxy.start()
const proxiedUrl = new URL(database.url)
proxiedUrl.host = `127.0.0.1:${proxy.port}`
const main: TestApp = await buildTestApp({}, { database: { url: proxiedUrl.toString(), poolMax: database.poolMax, drop: async () => {} } })
const { app } = main
t.teardown(async () => {
  await main.close()
  await proxy.close()
  await database.drop()
})

interface Client {
  email: string
  /** The refresh token this client holds: the last one acknowledged to it. */
  token: string
}

interface Attempt {
  startedAt: number
  endedAt: number
  status: number
  code?: string
}

const clients: Client[] = []
for (let i = 0; i < USERS; i++) {
  const account = await signup(app, { email: `fault-${i}-${Date.now()}@fault.test` })
  clients.push({ email: account.email, token: account.refresh_token })
}

/** A client outside the load that only probes for recovery: its session is never at risk of reuse. */
const probe: Client = await (async () => {
  const account = await signup(app, { email: `fault-probe-${Date.now()}@fault.test` })
  return { email: account.email, token: account.refresh_token }
})()

/** Every refresh token ever acknowledged with 200. */
const acknowledged: string[] = []

async function refreshOnce (client: Client): Promise<Attempt> {
  const startedAt = Date.now()
  const response = await refresh(app, client.token, { clientId: 'mobile' })
  const endedAt = Date.now()
  if (response.statusCode === 200) {
    client.token = json<{ refresh_token: string }>(response).refresh_token
    acknowledged.push(client.token)
  }
  const body = response.body.startsWith('{') ? json(response) : {}
  return { startedAt, endedAt, status: response.statusCode, code: (body.code ?? body.error) as string | undefined }
}

/** Runs WORKERS refresh loops, each over its own clients, until `until` resolves. */
async function load (until: Promise<void>): Promise<Attempt[]> {
  const attempts: Attempt[] = []
  let done = false
  void until.then(() => {
    done = true
  })
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, worker) => {
      const mine = clients.filter((_, i) => i % WORKERS === worker)
      // `done` is set by the timer above, while these loops await.
      // eslint-disable-next-line no-unmodified-loop-condition
      for (let round = 0; !done; round++) {
        const attempt = await refreshOnce(mine[round % mine.length]!)
        attempts.push(attempt)
        // A client that got an error backs off a little, as real clients do (Retry-After).
        if (attempt.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })
  )
  return attempts
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until a refresh succeeds; the time it took since `from`. */
async function waitForRecovery (from: number, limitMs = 30_000): Promise<number> {
  for (;;) {
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    if (ready.statusCode === 200) {
      const attempt = await refreshOnce(probe)
      if (attempt.status === 200) return Date.now() - from
    }
    if (Date.now() - from > limitMs) throw new Error(`no recovery within ${limitMs} ms`)
    await sleep(50)
  }
}

function summarise (attempts: Attempt[], from: number, to: number) {
  const during = attempts.filter((a) => a.endedAt >= from && a.startedAt <= to)
  const failed = during.filter((a) => a.status !== 200)
  const byStatus: Record<string, number> = {}
  for (const a of during) byStatus[`${a.status}${a.code ? ` ${a.code}` : ''}`] = (byStatus[`${a.status}${a.code ? ` ${a.code}` : ''}`] ?? 0) + 1
  const slowest = Math.max(0, ...failed.map((a) => a.endedAt - a.startedAt))
  return { during: during.length, failed: failed.length, byStatus, slowest }
}

/**
 * `revocable`: sessions that may have been revoked for reuse (a refresh that
 * committed while its answer was lost, retried after the grace window).
 */
async function checkInvariants (t: Test, revocable = 0) {
  await withClient(database.url, async (db) => {
    // One row per session holds its one live token (DESIGN §3.13); what a
    // half-applied rotation would leave is a generation without its
    // retirement, or no live hash.
    const noLive = await db.query('SELECT id FROM sessions WHERE refresh_token_hash IS NULL')
    t.same(noLive.rows, [], 'every session has its live token')
    const torn = await db.query(
      `SELECT id FROM sessions WHERE coalesce(cardinality(recent_retirements), 0) <> least(generation, ${RECENT_RETIREMENTS})`
    )
    t.same(torn.rows, [], 'every rotation recorded its retirement with it')
    const revoked = await db.query('SELECT id, revoked_reason FROM sessions WHERE revoked_at IS NOT NULL')
    if (revocable === 0) t.same(revoked.rows, [], 'no session revoked (no retry was mistaken for reuse)')
    else {
      t.ok(revoked.rows.length <= revocable, `${revoked.rows.length} sessions revoked for reuse, at most the ${revocable} refreshes in flight when the answers were lost`)
      t.ok(revoked.rows.every((r: { revoked_reason: string }) => r.revoked_reason === 'refresh_token_reused'), 'only by reuse detection')
    }
    revokedSessions = revoked.rows.length
    // A token handed to a client is one its session has reached: the rotation that made it committed.
    const issued = acknowledged.map((token) => app.sessions.readRefreshToken(token)!)
    const reached = await db.query<{ id: string; generation: number }>('SELECT id, generation FROM sessions WHERE id = ANY($1::uuid[])', [
      [...new Set(issued.map((i) => i.sessionId))],
    ])
    const generations = new Map(reached.rows.map((r) => [r.id, r.generation]))
    const missing = issued.filter((i) => !(i.generation <= (generations.get(i.sessionId) ?? -1)))
    t.same(missing, [], `all ${new Set(acknowledged).size} acknowledged refresh tokens were committed`)
  })
  const final = await Promise.all(clients.map((client) => refreshOnce(client)))
  t.equal(final.filter((a) => a.status === 200).length, clients.length - revokedSessions, "every client's token still refreshes, but a revoked session's")
  // A client whose session was revoked signs in again; the run goes on with fresh tokens.
  for (const [i, attempt] of final.entries()) {
    if (attempt.status === 200) continue
    const login = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: clients[i]!.email, password: 'a fine passphrase' } })
    t.equal(login.statusCode, 200, 'a revoked client signs in again')
    clients[i]!.token = json<{ refresh_token: string }>(login).refresh_token
  }
}

let revokedSessions = 0

t.test('connections cut and refused mid-load: 503 fast, self-recovery, nothing lost', async (t) => {
  let endLoad!: () => void
  const loadRunning = load(new Promise<void>((resolve) => (endLoad = resolve)))
  await sleep(1_000)
  const cutAt = Date.now()
  proxy.cut()
  await sleep(OUTAGE_MS)
  const readyDuringOutage = await app.inject({ method: 'GET', url: '/ready' })
  proxy.restore()
  const restoredAt = Date.now()
  const recoveryMs = await waitForRecovery(restoredAt)
  await sleep(1_000)
  endLoad()
  const attempts = await loadRunning
  const outage = summarise(attempts, cutAt, restoredAt)
  const before = attempts.filter((a) => a.endedAt < cutAt)
  t.comment(
    `proxy cut for ${restoredAt - cutAt} ms: ${attempts.length} refreshes in all (${before.length} before the cut), ` +
      `${outage.during} during the outage, ${outage.failed} failed ${JSON.stringify(outage.byStatus)}, ` +
      `slowest failure ${outage.slowest} ms, refused connections ${proxy.refused}, recovery ${recoveryMs} ms after restore`
  )
  t.ok(before.length > 0 && before.every((a) => a.status === 200), 'refreshes succeed before the cut')
  t.ok(outage.failed > 0, 'the outage was felt')
  t.equal(readyDuringOutage.statusCode, 503, '/ready answers 503 during the outage')
  const notUnavailable = attempts.filter((a) => a.status !== 200 && a.status !== 503)
  t.same(notUnavailable, [], 'every failure is a 503 (no 500, no invalid_grant)')
  t.ok(outage.slowest < FAIL_FAST_MS, `failures are fast: slowest ${outage.slowest} ms < ${FAIL_FAST_MS} ms`)
  t.ok(recoveryMs < 10_000, `recovered by itself ${recoveryMs} ms after the database came back`)
  const after = attempts.filter((a) => a.startedAt > restoredAt + recoveryMs)
  t.ok(after.length > 0 && after.every((a) => a.status === 200), `after recovery every refresh succeeds (${after.length})`)
  await checkInvariants(t)
})

t.test('backends terminated with pg_terminate_backend mid-load: 503 at most, self-recovery, nothing lost', async (t) => {
  let endLoad!: () => void
  const loadRunning = load(new Promise<void>((resolve) => (endLoad = resolve)))
  await sleep(500)
  const name = new URL(database.url).pathname.slice(1)
  let terminated = 0
  const killedAt = Date.now()
  for (let i = 0; i < 3; i++) {
    const result = await withClient(realPostgresUrl!, (admin) =>
      admin.query('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
        decodeURIComponent(name),
      ])
    )
    terminated += result.rowCount ?? 0
    await sleep(300)
  }
  const recoveryMs = await waitForRecovery(Date.now())
  await sleep(500)
  endLoad()
  const attempts = await loadRunning
  const window = summarise(attempts, killedAt, Date.now())
  t.comment(
    `${terminated} backends terminated in 3 rounds: ${window.during} refreshes in the window, ${window.failed} failed ` +
      `${JSON.stringify(window.byStatus)}, slowest failure ${window.slowest} ms, recovery ${recoveryMs} ms`
  )
  t.ok(terminated > 0, 'backends were terminated')
  t.same(attempts.filter((a) => a.status !== 200 && a.status !== 503), [], 'every failure is a 503')
  t.ok(window.slowest < FAIL_FAST_MS, `failures are fast (${window.slowest} ms)`)
  await checkInvariants(t)
})

async function partition (t: Test, ms: number) {
  let endLoad!: () => void
  const loadRunning = load(new Promise<void>((resolve) => (endLoad = resolve)))
  await sleep(500)
  const frozenAt = Date.now()
  proxy.freeze()
  await sleep(ms)
  proxy.thaw()
  const thawedAt = Date.now()
  const recoveryMs = await waitForRecovery(thawedAt)
  await sleep(500)
  endLoad()
  const attempts = await loadRunning
  const window = summarise(attempts, frozenAt, thawedAt)
  const during = attempts.filter((a) => a.startedAt >= frozenAt - 100 && a.startedAt <= thawedAt)
  const slowest = Math.max(0, ...during.map((a) => a.endedAt - a.startedAt))
  const inFlight = attempts.filter((a) => a.startedAt <= frozenAt && a.endedAt >= frozenAt).length
  t.comment(
    `partition for ${thawedAt - frozenAt} ms (grace window ${main.config.refreshGraceSeconds} s): ${window.during} refreshes overlapped it ` +
      `(${inFlight} in flight when it began), ${window.failed} failed ${JSON.stringify(window.byStatus)}, ` +
      `slowest request ${slowest} ms, recovery ${recoveryMs} ms after it healed`
  )
  t.ok(window.failed > 0, 'the partition was felt')
  t.ok(slowest <= PARTITION_BOUND_MS, `no request hung: slowest ${slowest} ms <= ${PARTITION_BOUND_MS} ms (query timeout 10 s + slack)`)
  t.ok(recoveryMs < 10_000, `recovered ${recoveryMs} ms after the partition healed`)
  return { attempts, inFlight, thawedAt }
}

t.test('a network partition shorter than the grace window: bounded 503s, self-recovery, nothing lost, nothing revoked', async (t) => {
  const { attempts } = await partition(t, SHORT_PARTITION_MS)
  t.same(attempts.filter((a) => a.status !== 200 && a.status !== 503), [], 'every failure is a 503')
  await checkInvariants(t)
})

t.test('a network partition longer than the grace window: bounded 503s; only a lost answer retried too late revokes its session', async (t) => {
  const { attempts, inFlight, thawedAt } = await partition(t, LONG_PARTITION_MS)
  // A refresh in flight when the network broke may have committed while its answer was lost (the
  // client saw 503). Its retry after the grace window is, by DESIGN §3.5 rule 4, a reuse.
  const unexpected = attempts.filter((a) => a.status !== 200 && a.status !== 503 && !(a.code === 'invalid_grant' && a.startedAt >= thawedAt))
  t.same(unexpected, [], 'every failure is a 503, or invalid_grant for a retry after the partition')
  await checkInvariants(t, inFlight)
})
