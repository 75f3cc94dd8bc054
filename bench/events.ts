/**
 * Figure 9: events (webhooks, docs/events.md). Three measurements in one run,
 * each on services of the same build started for it (WEBHOOK_ALLOW_PRIVATE_NETWORKS
 * so that they deliver to a loopback receiver, REQUIRE_MFA_FOR_ADMINS=false so
 * that a password login makes an admin) on one database:
 *
 *   a. Delivery throughput: one endpoint subscribed to `*` on a receiver in
 *      this process (node:http, answering 204; every 50th message checked
 *      with the standardwebhooks package against the secret of the
 *      registration), BENCH_WEBHOOK_EVENTS audit events written in one SQL
 *      statement (the trigger fans them out into deliveries), and the time
 *      from its commit until every delivery has delivered_at (the database
 *      polled every 100 ms) and the receiver has each event: events/s,
 *      target >= 1,000/s. Again with a second instance on the same database:
 *      the same, and no webhook-id may arrive twice.
 *   b. Oldest pending event under a steady write load: BENCH_WEBHOOK_RATE
 *      (100) changes a second for BENCH_WEBHOOK_SECONDS (20) through the
 *      admin API (PATCH /admin/users/:id disabling, then enabling, users of a
 *      pool; one audit event each), open loop, with a `*` endpoint
 *      registered; `now() - min(created_at)` of the deliveries neither
 *      delivered nor dead sampled every 200 ms from the first change until
 *      the last is delivered: maximum and p99, target < 2 s.
 *   c. Logins per second with an event per login vs without: password
 *      logins through the authorization challenge endpoint, as figure 3
 *      sends them, each followed by its code's exchange at the token endpoint
 *      (the exchange starts the session and writes login_succeeded; the
 *      challenge alone writes no event), closed loop, BENCH_LOGIN_CONNECTIONS
 *      (cores x 2) at once; rounds alternate without any endpoint and
 *      with one subscribed to login_succeeded (registered before the round,
 *      its deliveries awaited and the endpoint deleted after it), target
 *      with / without >= 0.97.
 *
 *   npx tsx bench/events.ts        (after npm run build)
 *
 * Environment: DATABASE_URL (default: a fresh database, dropped afterwards),
 * BCRYPT_COST (12), BENCH_WEBHOOK_EVENTS (20000), BENCH_WEBHOOK_RATE (100),
 * BENCH_WEBHOOK_SECONDS (20), BENCH_DURATION seconds per login round (10),
 * BENCH_ROUNDS login rounds of each kind (3, at least 2),
 * BENCH_LOGIN_CONNECTIONS (cores x 2), BENCH_EVENTS_PARTS (a,b,c: the
 * parts to run), BENCH_EVENTS_PROFILE (a directory: a V8 CPU profile of each
 * service process through each of a and b, events-<part>-<pid>.cpuprofile,
 * for bench/cpuprofile-summary.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { Webhook } from 'standardwebhooks'
import { benchDatabase, envInt, machine, percentile, printTable, startService, writeResults, type Figure, type RunningService } from './lib.js'

export interface EventsOptions {
  databaseUrl: string
  /** The SECRET_KEY of any service already on that database (its signing keys are sealed under it); default a new one. */
  secretKey?: string
  bcryptCost: number
  /** a: audit events written in one statement, per run. */
  events: number
  /** b: changes per second through the admin API, and for how long. */
  steadyRate: number
  steadySeconds: number
  /** c: seconds per login round, rounds of each kind, logins in flight. */
  loginSeconds: number
  loginRounds: number
  loginConnections: number
  /** Setup requests (sign-ups, the admin's logins) come from here, not to spend 127.0.0.1's budgets. */
  setupRemoteAddress?: string
  /** The parts to run (default all). */
  parts?: ('a' | 'b' | 'c')[]
  /** A directory: a V8 CPU profile of each service process through each phase of a and b, `events-<phase>-<pid>.cpuprofile`. */
  profileDir?: string
  log?: (text: string) => void
}

export interface ThroughputRun {
  instances: number
  events: number
  /** The INSERT … SELECT with its fan-out, until its commit. */
  insertMs: number
  /** From the commit until every delivery was delivered and received (or the deadline). */
  seconds: number
  perSecond: number
  delivered: number
  dead: number
  /** Distinct events of the run the receiver got. */
  received: number
  /** Events of the run that arrived more than once. */
  duplicates: number
  /** Claims beyond one per delivery (failed attempts, expired leases). */
  extraAttempts: number
  complete: boolean
  /** CPU time (user + system) per event of the service processes, and of this process (the receiver, the polling). */
  serviceCpuUsPerEvent: number
  benchCpuUsPerEvent: number
}

export interface SteadyRun {
  ratePerSecond: number
  seconds: number
  requests: number
  non2xx: number
  /** Answers by status (0: none, the connection failed). */
  statuses: Record<string, number>
  requestP99Ms: number
  eventsWritten: number
  eventsPerSecond: number
  samples: number
  oldestMaxSeconds: number
  oldestP99Seconds: number
  oldestP50Seconds: number
  /** The most deliveries pending at one sample. */
  pendingMax: number
  /** From the last change sent until its deliveries were all delivered. */
  drainSeconds: number
  /** Each delivery's delivered_at - created_at (its event's transaction start): p99 and maximum. */
  deliveredAfterP99Seconds: number
  deliveredAfterMaxSeconds: number
  received: number
  duplicates: number
  /** The service's CPU time per change sent, from the first change until the last was delivered. */
  serviceCpuUsPerChange: number
}

export interface LoginRound {
  side: 'without' | 'with'
  perSecond: number
  logins: number
  /** Challenges the bcrypt queue refused at once (503, past PASSWORD_QUEUE_MAX_WAIT_MS's expected wait). */
  shed: number
  failures: number
  /** login_succeeded deliveries made during the round, all awaited as delivered. */
  deliveries: number
  /** The service's CPU time per login: the round's, and with an endpoint its deliveries' until the last was delivered. */
  cpuUsPerLogin: number
  loadAverage: string
}

export interface EventsResult {
  /** a: one instance, then two (empty when a is not run). */
  throughput: ThroughputRun[]
  steady?: SteadyRun
  logins?: {
    withPerSecond: number
    withoutPerSecond: number
    ratio: number
    /** Medians over the rounds of the service's CPU time per login (the machine's load skews it far less than logins/s). */
    withCpuUsPerLogin: number
    withoutCpuUsPerLogin: number
    connections: number
    secondsPerRound: number
    rounds: LoginRound[]
  }
  /** Messages checked with standardwebhooks' Webhook.verify, and those refused. */
  verified: number
  verifyFailures: string[]
  /** Over the whole run: (endpoint, webhook-id) pairs that arrived more than once. */
  duplicatesOverall: number
  bcryptCost: number
}

export const THROUGHPUT_TARGET = 1_000
export const OLDEST_TARGET_SECONDS = 2
export const LOGIN_RATIO_TARGET = 0.97
/** How long a login loop waits after a 503 (shed by the bcrypt queue) before its next login. */
const SHED_BACKOFF_MS = 100
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const loadAverage = () => loadavg().map((x) => x.toFixed(2)).join(' ')

/** The options from the environment, as the comment at the top lists them. */
export function eventsBenchOptions (): Omit<EventsOptions, 'databaseUrl' | 'bcryptCost'> {
  return {
    events: envInt('BENCH_WEBHOOK_EVENTS', 20_000),
    steadyRate: envInt('BENCH_WEBHOOK_RATE', 100),
    steadySeconds: envInt('BENCH_WEBHOOK_SECONDS', 20),
    loginSeconds: envInt('BENCH_DURATION', 10),
    loginRounds: Math.max(2, envInt('BENCH_ROUNDS', 3)),
    // Two logins per bcrypt slot (passwords.ts: one per core): every slot busy, one waiting, and the queue's bound
    // (PASSWORD_QUEUE_MAX_WAIT_MS) not reached on a loaded machine (figure 3's 8 connections were shed here).
    loginConnections: envInt('BENCH_LOGIN_CONNECTIONS', availableParallelism() * 2),
    ...(process.env.BENCH_EVENTS_PROFILE ? { profileDir: process.env.BENCH_EVENTS_PROFILE } : {}),
    ...(process.env.BENCH_EVENTS_PARTS ? { parts: process.env.BENCH_EVENTS_PARTS.split(',').map((x) => x.trim()) as EventsOptions['parts'] } : {}),
  }
}

/**
 * A webhook receiver in this process: answers 204 to everything, counts
 * each (path, webhook-id), and checks every `sampleEvery`-th message with
 * the standardwebhooks package against the secret of its path's endpoint.
 */
class Receiver {
  readonly counts = new Map<string, number>()
  /** Distinct webhook-ids per path. */
  readonly distinct = new Map<string, number>()
  readonly secrets = new Map<string, string>()
  verified = 0
  readonly verifyFailures: string[] = []
  private received = 0
  private readonly server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => this.handle(request, response))

  constructor (private readonly sampleEvery = 50) {}

  async listen (): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  /** (path, webhook-id) pairs received more than once. */
  duplicates (): number {
    let n = 0
    for (const count of this.counts.values()) if (count > 1) n++
    return n
  }

  count (path: string, webhookId: string): number {
    return this.counts.get(`${path} ${webhookId}`) ?? 0
  }

  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private handle (request: IncomingMessage, response: ServerResponse): void {
    const path = request.url ?? ''
    const id = String(request.headers['webhook-id'] ?? '')
    const key = `${path} ${id}`
    const seen = (this.counts.get(key) ?? 0) + 1
    this.counts.set(key, seen)
    if (seen === 1) this.distinct.set(path, (this.distinct.get(path) ?? 0) + 1)
    const sampled = this.received++ % this.sampleEvery === 0
    const chunks: Buffer[] = []
    if (sampled) request.on('data', (chunk: Buffer) => chunks.push(chunk))
    else request.resume()
    request.on('end', () => {
      if (sampled) this.verify(path, Buffer.concat(chunks).toString('utf8'), request.headers)
      response.writeHead(204).end()
    })
  }

  private verify (path: string, body: string, headers: IncomingMessage['headers']): void {
    const secret = this.secrets.get(path)
    try {
      if (!secret) throw new Error(`no endpoint registered at ${path}`)
      const message = new Webhook(secret).verify(body, headers as Record<string, string>) as { type?: unknown; data?: { id?: unknown } }
      if (typeof message.type !== 'string' || `evt_${String(message.data?.id)}` !== headers['webhook-id']) throw new Error(`unexpected body ${body.slice(0, 100)}`)
      this.verified++
    } catch (error) {
      if (this.verifyFailures.length < 10) this.verifyFailures.push(`${path}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
}

/** An admin of the service (signed up, made admin with SQL, signed in with the password grant) calling the admin API over HTTP. */
class Admin {
  private token = ''
  private tokenAt = 0

  constructor (
    private readonly service: RunningService,
    private readonly email: string,
    private readonly password: string,
    private readonly remoteAddress: string
  ) {}

  static async create (service: RunningService, db: pg.Client, remoteAddress: string): Promise<Admin> {
    const email = `events-admin-${randomBytes(4).toString('hex')}@bench.test`
    const password = `bench admin passphrase ${randomBytes(4).toString('hex')}`
    const signup = await service.inject({ method: 'POST', url: '/auth/signup', payload: { email, password }, remoteAddress })
    if (signup.statusCode !== 201) throw new Error(`admin signup: ${signup.statusCode} ${signup.body}`)
    await db.query("UPDATE users SET role = 'admin' WHERE email = $1", [email])
    return new Admin(service, email, password, remoteAddress)
  }

  /** A fresh access token (admins' live 5 minutes; writes need a sign-in of the last 15). */
  async accessToken (): Promise<string> {
    if (Date.now() - this.tokenAt < 120_000) return this.token
    const response = await this.service.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'password', username: this.email, password: this.password },
      remoteAddress: this.remoteAddress,
    })
    if (response.statusCode !== 200) throw new Error(`admin login: ${response.statusCode} ${response.body}`)
    this.token = (JSON.parse(response.body) as { access_token: string }).access_token
    this.tokenAt = Date.now()
    return this.token
  }

  async call<T> (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, expected = method === 'POST' ? 201 : method === 'DELETE' ? 204 : 200): Promise<T> {
    const response = await fetch(`${this.service.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${await this.accessToken()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    if (response.status !== expected) throw new Error(`${method} ${path}: ${response.status} ${text}`)
    return (text ? JSON.parse(text) : undefined) as T
  }
}

interface Endpoint {
  id: string
  path: string
}

async function register (admin: Admin, receiver: Receiver, receiverUrl: string, events: string[]): Promise<Endpoint> {
  const path = `/hooks/${randomBytes(4).toString('hex')}`
  const { id, secret } = await admin.call<{ id: string; secret: string }>('POST', '/admin/webhooks', { url: `${receiverUrl}${path}`, events })
  receiver.secrets.set(path, secret)
  return { id, path }
}

interface Progress {
  total: number
  delivered: number
  dead: number
  attempts: number
}

/** The deliveries of `endpoint` for the events with ids in [low, high]. */
async function progress (db: pg.Client, endpoint: Endpoint, low: string, high: string): Promise<Progress> {
  const { rows } = await db.query<Progress>(
    `SELECT count(*)::int AS total, (count(*) FILTER (WHERE delivered_at IS NOT NULL))::int AS delivered,
            (count(*) FILTER (WHERE dead_at IS NOT NULL))::int AS dead, COALESCE(sum(attempts), 0)::int AS attempts
       FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id BETWEEN $2 AND $3`,
    [endpoint.id, low, high]
  )
  return rows[0]!
}

/** Polls every 100 ms until every delivery of the range is delivered or dead, and `received()` holds; false at the deadline. */
async function awaitDeliveries (db: pg.Client, endpoint: Endpoint, low: string, high: string, expected: number, received: () => boolean, deadlineMs: number): Promise<{ done: boolean; last: Progress }> {
  for (;;) {
    const last = await progress(db, endpoint, low, high)
    if (last.total >= expected && last.delivered + last.dead >= last.total && received()) return { done: last.dead === 0, last }
    if (Date.now() > deadlineMs) return { done: false, last }
    await sleep(100)
  }
}

async function throughputRun (db: pg.Client, receiver: Receiver, endpoint: Endpoint, events: number, instances: number): Promise<ThroughputRun> {
  const started = performance.now()
  const { rows } = await db.query<{ id: string }>(
    "INSERT INTO audit_events (type, details) SELECT 'session_revoked', '{}'::jsonb FROM generate_series(1, $1::int) RETURNING id::text",
    [events]
  )
  const committed = performance.now()
  const ids = rows.map((row) => row.id)
  const sorted = ids.map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const low = sorted[0]!.toString()
  const high = sorted[sorted.length - 1]!.toString()
  const receivedBefore = receiver.distinct.get(endpoint.path) ?? 0
  const { done, last } = await awaitDeliveries(
    db, endpoint, low, high, events,
    () => (receiver.distinct.get(endpoint.path) ?? 0) - receivedBefore >= events,
    Date.now() + 60_000 + events * 10
  )
  const seconds = (performance.now() - committed) / 1000
  let received = 0
  let duplicates = 0
  for (const id of ids) {
    const n = receiver.count(endpoint.path, `evt_${id}`)
    if (n > 0) received++
    if (n > 1) duplicates++
  }
  return {
    instances,
    events,
    insertMs: committed - started,
    seconds,
    perSecond: last.delivered / seconds,
    delivered: last.delivered,
    dead: last.dead,
    received,
    duplicates,
    extraAttempts: last.attempts - last.total,
    complete: done && received === events,
    serviceCpuUsPerEvent: 0,
    benchCpuUsPerEvent: 0,
  }
}

async function signupMany (service: RunningService, count: number, label: string, remoteAddress: string): Promise<{ id: string; email: string; password: string }[]> {
  const tag = randomBytes(4).toString('hex')
  const people = Array.from({ length: count }, (_, i) => ({ email: `${label}-${tag}-${i}@bench.test`, password: `bench passphrase ${label} ${i} ${tag}` }))
  const users: { id: string; email: string; password: string }[] = []
  let next = 0
  // Two at a time: each is a bcrypt hash in the service's queue, which sheds (503) past its bound on a loaded machine.
  await Promise.all(Array.from({ length: 2 }, async () => {
    while (next < people.length) {
      const person = people[next++]!
      let response = await service.inject({ method: 'POST', url: '/auth/signup', payload: person, remoteAddress })
      for (let retry = 0; response.statusCode === 503 && retry < 20; retry++) {
        await sleep(500)
        response = await service.inject({ method: 'POST', url: '/auth/signup', payload: person, remoteAddress })
      }
      if (response.statusCode !== 201) throw new Error(`signup: ${response.statusCode} ${response.body}`)
      users.push({ ...person, id: (JSON.parse(response.body) as { user: { id: string } }).user.id })
    }
  }))
  return users
}

/**
 * b: `rate` PATCH /admin/users/:id a second for `seconds`, open loop (each
 * sent at its time, whatever the answers before it), over a pool of users
 * (each with the session of their sign-up): a pass over the pool disables
 * each, the next enables each again, and so on; one audit event each.
 */
async function steadyRun (service: RunningService, db: pg.Client, sampler: pg.Client, admin: Admin, receiver: Receiver, endpoint: Endpoint, pool: { id: string }[], rate: number, seconds: number): Promise<SteadyRun> {
  const { rows: [mark] } = await db.query<{ id: string }>('SELECT COALESCE(max(id), 0)::text AS id FROM audit_events')
  const token = await admin.accessToken()
  const total = rate * seconds
  const statuses: number[] = []
  const latencies: number[] = []
  const inFlight: Promise<void>[] = []
  const samples: number[] = []
  let pendingMax = 0
  const sampling = { on: true }
  const sampleLoop = (async () => {
    while (sampling.on) {
      const next = Date.now() + 200
      const { rows } = await sampler.query<{ age: number; pending: number }>(
        'SELECT COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age, count(*)::int AS pending FROM webhook_deliveries WHERE delivered_at IS NULL AND dead_at IS NULL'
      )
      samples.push(Math.max(0, rows[0]!.age))
      pendingMax = Math.max(pendingMax, rows[0]!.pending)
      await sleep(Math.max(0, next - Date.now()))
    }
  })()
  const start = performance.now()
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const user = pool[i % pool.length]!
    const disabled = Math.floor(i / pool.length) % 2 === 0
    inFlight.push((async () => {
      const sent = performance.now()
      try {
        const response = await fetch(`${service.baseUrl}/admin/users/${user.id}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ disabled }),
        })
        await response.arrayBuffer()
        statuses.push(response.status)
      } catch {
        statuses.push(0) // no answer
      }
      latencies.push(performance.now() - sent)
    })())
  }
  await Promise.all(inFlight)
  const sentAll = performance.now()
  const { rows: [written] } = await db.query<{ n: number; high: string }>(
    "SELECT count(*)::int AS n, COALESCE(max(id), 0)::text AS high FROM audit_events WHERE id > $1 AND type IN ('user_disabled', 'user_enabled')",
    [mark!.id]
  )
  const low = (BigInt(mark!.id) + 1n).toString()
  const { last } = await awaitDeliveries(db, endpoint, low, written!.high, written!.n, () => true, Date.now() + 120_000)
  const drainSeconds = (performance.now() - sentAll) / 1000
  sampling.on = false
  await sampleLoop
  const { rows: ids } = await db.query<{ id: string; after: number | null }>(
    'SELECT event_id::text AS id, extract(epoch FROM delivered_at - created_at)::float8 AS after FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id BETWEEN $2 AND $3',
    [endpoint.id, low, written!.high]
  )
  const after = ids.flatMap((row) => (row.after === null ? [] : [row.after]))
  let received = 0
  let duplicates = 0
  for (const { id } of ids) {
    const n = receiver.count(endpoint.path, `evt_${id}`)
    if (n > 0) received++
    if (n > 1) duplicates++
  }
  if (last.delivered !== written!.n) console.warn(`steady load: ${last.delivered} of ${written!.n} events delivered (${last.dead} dead)`)
  return {
    ratePerSecond: rate,
    seconds,
    requests: statuses.length,
    non2xx: statuses.filter((s) => s < 200 || s > 299).length,
    statuses: statuses.reduce<Record<string, number>>((counts, status) => ({ ...counts, [status]: (counts[status] ?? 0) + 1 }), {}),
    requestP99Ms: percentile(latencies, 99),
    eventsWritten: written!.n,
    eventsPerSecond: written!.n / ((sentAll - start) / 1000),
    samples: samples.length,
    oldestMaxSeconds: Math.max(...samples),
    oldestP99Seconds: percentile(samples, 99),
    oldestP50Seconds: percentile(samples, 50),
    pendingMax,
    drainSeconds,
    deliveredAfterP99Seconds: percentile(after, 99),
    deliveredAfterMaxSeconds: Math.max(...after),
    received,
    duplicates,
    serviceCpuUsPerChange: 0,
  }
}

/**
 * The CPU time (user + system, µs) `services` and this process use while
 * `work` runs; with `profileDir`, a CPU profile of each service through it.
 */
async function cpuOf<T> (services: RunningService[], phase: string, profileDir: string | undefined, work: () => Promise<T>): Promise<{ value: T; serviceCpuUs: number; benchCpuUs: number }> {
  if (profileDir) await Promise.all(services.map((s) => s.cpuProfile(true, 500)))
  const before = await Promise.all(services.map((s) => s.cpuUsage()))
  const bench = process.cpuUsage()
  const value = await work()
  const benchUsed = process.cpuUsage(bench)
  const after = await Promise.all(services.map((s) => s.cpuUsage()))
  if (profileDir) {
    await mkdir(profileDir, { recursive: true })
    await Promise.all(services.map((s) => s.cpuProfile(false, join(profileDir, `events-${phase}-${s.pid}.cpuprofile`))))
  }
  return { value, serviceCpuUs: after.reduce((a, x, i) => a + x - before[i]!, 0), benchCpuUs: benchUsed.user + benchUsed.system }
}

/**
 * c: logins as figure 3 sends them (POST /oauth/authorize-challenge with a
 * password, answering a code), each followed by the code's exchange (POST
 * /auth/token), which starts the session and writes login_succeeded;
 * `connections` loops, each a login at a time, for `seconds`. Logins
 * finished within the time count; the round waits for those in flight.
 */
async function loginRound (baseUrl: string, people: { email: string; password: string }[], connections: number, seconds: number): Promise<{ logins: number; shed: number; failures: number; seconds: number }> {
  const verifier = randomBytes(32).toString('base64url')
  const challenge = createHash('sha256').update(verifier).digest('base64url')
  const bodies = people.map((u) => JSON.stringify({ client_id: 'mobile', response_type: 'code', code_challenge: challenge, code_challenge_method: 'S256', username: u.email, password: u.password }))
  const json = { 'content-type': 'application/json' }
  let logins = 0
  let shed = 0
  let failures = 0
  let next = 0
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const code = await fetch(`${baseUrl}/oauth/authorize-challenge`, { method: 'POST', headers: json, body: bodies[next++ % bodies.length]! })
      const answer = (await code.json()) as { authorization_code?: string }
      if (code.status !== 200 || !answer.authorization_code) {
        // 503: the bcrypt queue's bound (PASSWORD_QUEUE_MAX_WAIT_MS) shed it, at once; a client waits before trying again.
        if (code.status === 503) {
          shed++
          await sleep(SHED_BACKOFF_MS)
        } else {
          failures++
        }
        continue
      }
      const exchange = await fetch(`${baseUrl}/auth/token`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ grant_type: 'authorization_code', client_id: 'mobile', code: answer.authorization_code, code_verifier: verifier }),
      })
      await exchange.arrayBuffer()
      if (exchange.status !== 200) failures++
      else if (performance.now() <= end) logins++
    }
  }))
  return { logins, shed, failures, seconds }
}

export async function measureEvents (options: EventsOptions): Promise<EventsResult> {
  const log = options.log ?? ((text: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`))
  const parts = new Set(options.parts ?? ['a', 'b', 'c'])
  const remoteAddress = options.setupRemoteAddress ?? '10.7.0.1'
  const env = {
    DATABASE_URL: options.databaseUrl,
    SECRET_KEY: options.secretKey ?? randomBytes(32).toString('base64url'),
    BCRYPT_COST: String(options.bcryptCost),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    REQUIRE_MFA_FOR_ADMINS: 'false',
  }
  const receiver = new Receiver()
  const receiverUrl = await receiver.listen()
  const db = new pg.Client({ connectionString: options.databaseUrl })
  const sampler = new pg.Client({ connectionString: options.databaseUrl })
  await db.connect()
  await sampler.connect()
  const service = await startService(env)
  let second: RunningService | undefined
  const result: EventsResult = { throughput: [], verified: 0, verifyFailures: [], duplicatesOverall: 0, bcryptCost: options.bcryptCost }
  try {
    const admin = await Admin.create(service, db, remoteAddress)
    // The queue to ourselves: endpoints an earlier run left on this database would be delivered to as well.
    const { rows: stale } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_endpoints')
    if (stale[0]!.n > 0) throw new Error(`the database already has ${stale[0]!.n} webhook endpoints; figure 9 needs it without`)

    // ---- a. Throughput, one instance, then two -------------------------------
    if (parts.has('a')) {
      const endpoint = await register(admin, receiver, receiverUrl, ['*'])
      const run = async (services: RunningService[]) => {
        log(`figure 9a: ${options.events} events in one statement, ${services.length} instance(s); load average ${loadAverage()}`)
        const { value, serviceCpuUs, benchCpuUs } = await cpuOf(services, `a${services.length}`, options.profileDir, () => throughputRun(db, receiver, endpoint, options.events, services.length))
        result.throughput.push({ ...value, serviceCpuUsPerEvent: serviceCpuUs / options.events, benchCpuUsPerEvent: benchCpuUs / options.events })
        log(`figure 9a: ${value.perSecond.toFixed(0)} events/s, service CPU ${(serviceCpuUs / options.events).toFixed(0)} µs per event`)
      }
      await run([service])
      second = await startService(env)
      await run([service, second])
      await second.close()
      second = undefined
      // Its deliveries go with it: the next parts start on a short queue.
      await admin.call('DELETE', `/admin/webhooks/${endpoint.id}`)
    }

    // ---- b. Oldest pending event under a steady write load -------------------
    if (parts.has('b')) {
      const pool = await signupMany(service, 50, 'steady', remoteAddress)
      const endpoint = await register(admin, receiver, receiverUrl, ['*'])
      await sleep(1000)
      log(`figure 9b: ${options.steadyRate} changes/s for ${options.steadySeconds} s through PATCH /admin/users/:id; load average ${loadAverage()}`)
      const measured = await cpuOf([service], 'b', options.profileDir, () => steadyRun(service, db, sampler, admin, receiver, endpoint, pool, options.steadyRate, options.steadySeconds))
      result.steady = { ...measured.value, serviceCpuUsPerChange: measured.serviceCpuUs / measured.value.requests }
      await admin.call('DELETE', `/admin/webhooks/${endpoint.id}`)
    }

    // ---- c. Logins with an event each vs without -----------------------------
    if (parts.has('c')) {
      const people = await signupMany(service, 16, 'login', remoteAddress)
      await loginRound(service.baseUrl, people, options.loginConnections, 2) // warm-up
      const rounds: LoginRound[] = []
      for (let round = 0; round < options.loginRounds; round++) {
        // Which side goes first alternates, so a drift of the machine within a pair of rounds hits both alike.
        for (const side of round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
          const hook = side === 'with' ? await register(admin, receiver, receiverUrl, ['login_succeeded']) : null
          const { rows: [mark] } = await db.query<{ id: string }>('SELECT COALESCE(max(id), 0)::text AS id FROM audit_events')
          const cpuBefore = await service.cpuUsage()
          const run = await loginRound(service.baseUrl, people, options.loginConnections, options.loginSeconds)
          let deliveries = 0
          if (hook) {
            // Every delivery of the round delivered before the next round, then the endpoint gone.
            const { rows: [high] } = await db.query<{ id: string }>('SELECT COALESCE(max(id), 0)::text AS id FROM audit_events')
            const { last } = await awaitDeliveries(db, hook, mark!.id, high!.id, 0, () => true, Date.now() + 60_000)
            deliveries = last.delivered
          }
          const cpuUsPerLogin = ((await service.cpuUsage()) - cpuBefore) / (run.logins + run.failures)
          if (hook) await admin.call('DELETE', `/admin/webhooks/${hook.id}`)
          rounds.push({ side, perSecond: run.logins / run.seconds, logins: run.logins, shed: run.shed, failures: run.failures, deliveries, cpuUsPerLogin, loadAverage: loadAverage() })
          log(`figure 9c: round ${round + 1} ${side} an endpoint: ${(run.logins / run.seconds).toFixed(1)} logins/s (${run.shed} shed, ${run.failures} failed)${hook ? `, ${deliveries} delivered` : ''}; load average ${loadAverage()}`)
        }
      }
      const rate = (side: LoginRound['side']) => {
        const of = rounds.filter((r) => r.side === side)
        return of.reduce((a, r) => a + r.logins, 0) / (of.length * options.loginSeconds)
      }
      const withPerSecond = rate('with')
      const withoutPerSecond = rate('without')
      const cpu = (side: LoginRound['side']) => percentile(rounds.filter((r) => r.side === side).map((r) => r.cpuUsPerLogin), 50)
      result.logins = {
        withPerSecond,
        withoutPerSecond,
        ratio: withPerSecond / withoutPerSecond,
        withCpuUsPerLogin: cpu('with'),
        withoutCpuUsPerLogin: cpu('without'),
        connections: options.loginConnections,
        secondsPerRound: options.loginSeconds,
        rounds,
      }
    }
    result.verified = receiver.verified
    result.verifyFailures = receiver.verifyFailures
    result.duplicatesOverall = receiver.duplicates()
    return result
  } finally {
    await second?.close()
    await service.close()
    await db.end()
    await sampler.end()
    await receiver.close()
  }
}

/** The figure's rows, for bench/index.ts's table and this script's. */
export function eventsFigures (result: EventsResult): Figure[] {
  const signed = result.verifyFailures.length === 0 && result.verified > 0
  const rows: Figure[] = []
  for (const run of result.throughput) {
    rows.push({
      figure: `9 webhook deliveries/s, ${run.instances} instance${run.instances === 1 ? '' : 's'}`,
      unit: 'events/s',
      measured: run.perSecond,
      baseline: THROUGHPUT_TARGET,
      ratio: run.perSecond / THROUGHPUT_TARGET,
      // The target is one instance's; with two, that no event arrives twice.
      target: run.instances === 1 ? '>= 1.00' : 'no dup',
      pass: run.complete && run.duplicates === 0 && signed && (run.instances > 1 || run.perSecond >= THROUGHPUT_TARGET),
      detail: { ...run, verified: result.verified, verifyFailures: result.verifyFailures },
    })
  }
  const steady = result.steady
  if (steady) {
    rows.push({
      figure: `9 oldest pending ms, max, ${steady.ratePerSecond} changes/s`,
      unit: 'ms',
      measured: steady.oldestMaxSeconds * 1000,
      baseline: OLDEST_TARGET_SECONDS * 1000,
      ratio: steady.oldestMaxSeconds / OLDEST_TARGET_SECONDS,
      target: '< 1.00',
      pass: steady.oldestMaxSeconds < OLDEST_TARGET_SECONDS && steady.non2xx === 0 && steady.duplicates === 0,
      detail: { ...steady },
    })
    rows.push({
      figure: '9 oldest pending ms, p99',
      unit: 'ms',
      measured: steady.oldestP99Seconds * 1000,
      baseline: OLDEST_TARGET_SECONDS * 1000,
      ratio: steady.oldestP99Seconds / OLDEST_TARGET_SECONDS,
      target: '< 1.00',
      pass: steady.oldestP99Seconds < OLDEST_TARGET_SECONDS && steady.non2xx === 0,
    })
  }
  const logins = result.logins
  if (logins) {
    rows.push({
      figure: '9 logins/s, an event each vs none',
      unit: 'logins/s',
      measured: logins.withPerSecond,
      baseline: logins.withoutPerSecond,
      ratio: logins.ratio,
      target: '>= 0.97',
      pass: logins.ratio >= LOGIN_RATIO_TARGET && logins.rounds.every((r) => r.failures === 0),
      detail: { bcryptCost: result.bcryptCost, ...logins },
    })
    rows.push({
      figure: '9 CPU ms/login: none vs an event each',
      unit: 'ms',
      measured: logins.withCpuUsPerLogin / 1000,
      baseline: logins.withoutCpuUsPerLogin / 1000,
      ratio: logins.withoutCpuUsPerLogin / logins.withCpuUsPerLogin,
      target: '(baseline/measured)',
      pass: true,
      informational: true,
    })
  }
  return rows
}

/** The figure's notes under its table. */
export function eventsNote (result: EventsResult): string {
  const notes = result.throughput.map((r) =>
    `${r.instances} instance(s): ${r.events} events inserted in ${r.insertMs.toFixed(0)} ms, delivered in ${r.seconds.toFixed(1)} s, ` +
    `${r.duplicates} received twice, ${r.extraAttempts} extra attempt(s), CPU per event ${r.serviceCpuUsPerEvent.toFixed(0)} µs in the service(s) and ` +
    `${r.benchCpuUsPerEvent.toFixed(0)} µs in the receiver's process${r.complete ? '' : ' INCOMPLETE'}`)
  notes.push(
    `${result.verified} messages verified with standardwebhooks, ${result.verifyFailures.length} refused${result.verifyFailures.length ? ` (${result.verifyFailures.join('; ')})` : ''}, ` +
    `${result.duplicatesOverall} webhook-id(s) received twice by one endpoint in the whole run`
  )
  const s = result.steady
  if (s) {
    notes.push(
      `steady load: ${s.requests} changes (answers ${JSON.stringify(s.statuses)}, p99 ${s.requestP99Ms.toFixed(0)} ms, service CPU ${(s.serviceCpuUsPerChange / 1000).toFixed(1)} ms per change), ` +
      `${s.eventsWritten} events written, ${s.eventsPerSecond.toFixed(0)}/s, ${s.duplicates} received twice, ` +
      `oldest pending p50 ${(s.oldestP50Seconds * 1000).toFixed(0)} ms over ${s.samples} samples, at most ${s.pendingMax} pending, drained ${s.drainSeconds.toFixed(1)} s after the last, ` +
      `delivered after its transaction began: p99 ${(s.deliveredAfterP99Seconds * 1000).toFixed(0)} ms, max ${(s.deliveredAfterMaxSeconds * 1000).toFixed(0)} ms`
    )
  }
  const logins = result.logins
  if (logins) {
    const rounds = logins.rounds.map((r) => `${r.side} ${r.perSecond.toFixed(1)} (${(r.cpuUsPerLogin / 1000).toFixed(1)} ms CPU each${r.shed ? `, ${r.shed} shed` : ''})`).join(', ')
    notes.push(`logins/s per round (bcrypt cost ${result.bcryptCost}, ${logins.connections} in flight, ${logins.secondsPerRound} s): ${rounds}`)
  }
  return `figure 9: ${notes.join('; ')}`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const database = await benchDatabase('bench_events')
  const bcryptCost = envInt('BCRYPT_COST', 12)
  const info = machine()
  console.log(`${info.cores} cores (${info.cpu}), Node ${info.node}; load average ${loadAverage()}; BCRYPT_COST ${bcryptCost}`)
  try {
    const result = await measureEvents({ ...eventsBenchOptions(), databaseUrl: database.url, bcryptCost })
    const figures = eventsFigures(result)
    console.log()
    printTable(
      ['figure', 'measured', 'baseline', 'ratio', 'target', 'result'],
      figures.map((f) => {
        const digits = f.unit === 'logins/s' || (f.unit === 'ms' && f.measured < 100) ? 1 : 0
        return [f.figure, f.measured.toFixed(digits), f.baseline.toFixed(digits), f.ratio.toFixed(2), f.target, f.pass ? (f.informational ? 'info' : 'pass') : 'FAIL']
      })
    )
    console.log(`\n${eventsNote(result)}\n${info.cores} cores, Node ${info.node}, ${info.platform}; load average ${loadAverage()}`)
    const path = await writeResults('events.json', { at: new Date().toISOString(), machine: { ...info, loadAverage: loadAverage() }, figures, pass: figures.every((f) => f.pass), ...result })
    console.log(`results written to ${path}`)
  } finally {
    await database.drop()
  }
}
