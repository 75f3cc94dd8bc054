/**
 * Figure 6, storage that does not grow with use (DESIGN §3.13):
 *
 *   a. rows and bytes one session holds after 1, 100 and 10,000 rotations
 *      (after VACUUM), against what the layout of one row per refresh token
 *      (the old refresh_tokens, figure 2's baseline table) holds for the same
 *      rotations;
 *   b. refresh throughput and p99 on a database holding 10 million refreshes'
 *      worth of history (sessions seeded with SQL, live, revoked and expired
 *      within the retention, with their audit events) against the same service
 *      on an empty database, alternating rounds; target >= 0.9;
 *   c. a flood of forged refresh tokens (our shape, a wrong MAC) against a
 *      flood of password guesses answered 429 by the rate limit: the service's
 *      CPU time per answer (and answers per second beside it), target: a
 *      guess's cost / a forgery's >= 1.0 (a forgery costs no more).
 *
 *   npx tsx bench/storage.ts
 *
 * Environment: BENCH_DURATION seconds per measurement (10), BENCH_ROUNDS (2),
 * BENCH_CONNECTIONS (16), BENCH_POOL_MAX (10), BENCH_HISTORY_SESSIONS
 * (1,000,000) and BENCH_HISTORY_REFRESHES (10,000,000), BENCH_ROTATIONS
 * (10,000, the longest chain of part a).
 */
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { benchDatabase, envInt, machine, printTable, runLoad, startService, writeResults, type LoadResult, type RunningService } from './lib.js'
import { benchUsers, measureService, type Measurement } from './refresh.js'

export interface StorageBenchOptions {
  duration: number
  rounds: number
  connections: number
  poolMax: number
  historySessions: number
  historyRefreshes: number
  rotations: number
  quiet?: boolean
}

export interface ChainFootprint {
  rotations: number
  /** The service: rows and bytes of the session (its row, its indexes' share is fixed per row). */
  sessionRows: number
  sessionRowBytes: number
  /** One row per token, as figure 2's baseline table keeps them: rows, and table + index bytes after VACUUM. */
  tokenTableRows: number
  tokenTableBytes: number
}

export interface StorageBenchResult {
  footprints: ChainFootprint[]
  history: {
    seededSessions: number
    seededRefreshes: number
    seedSeconds: number
    databaseBytes: { empty: number; history: number }
    measurements: (Measurement & { database: 'empty' | 'history' })[]
    empty: { opsPerSecond: number; p99Ms: number }
    withHistory: { opsPerSecond: number; p99Ms: number }
    ratio: number
  }
  forgedFlood: {
    forgedPerSecond: number
    rateLimitedPerSecond: number
    /** The service process's CPU time (user + system) per answer. */
    forgedCpuMicrosPerAnswer: number
    rateLimitedCpuMicrosPerAnswer: number
    /** rateLimitedCpuMicrosPerAnswer / forgedCpuMicrosPerAnswer. */
    ratio: number
    statuses: { forged: Record<string, number>; rateLimited: Record<string, number> }
  }
}

/** One key for every service of a run: part c restarts the empty database's service, whose signing keys it encrypted. */
const SECRET_KEY = randomBytes(32).toString('base64url')
const SERVICE_ENV = (databaseUrl: string, poolMax: number, rateLimitPerMinute = 0) => ({
  SECRET_KEY,
  DATABASE_URL: databaseUrl,
  DATABASE_POOL_MAX: String(poolMax),
  // Only the setup logins hash passwords.
  BCRYPT_COST: '4',
  // Off, but for part c's own service.
  AUTH_RATE_LIMIT_PER_MINUTE: String(rateLimitPerMinute),
})
/** Setup requests come from their own addresses, so the limit does not refuse them. */
const setupAddress = () => `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`

// ---------------------------------------------------------------------------
// a. One session's footprint after n rotations.

async function rotateOver (service: RunningService, token: string, times: number): Promise<string> {
  let current = token
  for (let i = 0; i < times; i++) {
    const response = await fetch(`${service.baseUrl}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: current }),
    })
    if (response.status !== 200) throw new Error(`rotation ${i + 1} failed: ${response.status} ${await response.text()}`)
    current = ((await response.json()) as { refresh_token: string }).refresh_token
  }
  return current
}

async function footprints (service: RunningService, pool: pg.Pool, rotations: number[]): Promise<ChainFootprint[]> {
  const [user] = await benchUsers(service, 1, { setupRemoteAddress: setupAddress() })
  const login = await service.inject({ method: 'POST', url: '/auth/token', remoteAddress: setupAddress(), payload: { grant_type: 'password', username: user!.email, password: user!.password } })
  let token = (JSON.parse(login.body) as { refresh_token: string }).refresh_token
  const sessionId = (JSON.parse(Buffer.from((JSON.parse(login.body) as { access_token: string }).access_token.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid

  // The same chain in the old layout, in a table of its own.
  await pool.query(`DROP TABLE IF EXISTS footprint_refresh_tokens;
    CREATE TABLE footprint_refresh_tokens (
      id UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
      session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      token_hash BYTEA NOT NULL UNIQUE,
      parent_id UUID UNIQUE REFERENCES footprint_refresh_tokens (id) ON DELETE SET NULL,
      created_at TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
      retired_at TIMESTAMPTZ(3));
    CREATE INDEX footprint_refresh_tokens_session_id_idx ON footprint_refresh_tokens (session_id)`)

  const results: ChainFootprint[] = []
  let done = 0
  for (const target of rotations) {
    token = await rotateOver(service, token, target - done)
    // The old layout: one row per token. Parent links are left null, so its
    // figure is a lower bound (the real rows also filled the parent_id index).
    await pool.query(
      `INSERT INTO footprint_refresh_tokens (session_id, token_hash, retired_at)
       SELECT $1, decode(md5(random()::text) || md5(random()::text), 'hex'), now() FROM generate_series(1, $2)`,
      [sessionId, target - done + (done === 0 ? 1 : 0)]
    )
    done = target
    await pool.query('VACUUM (ANALYZE) sessions')
    await pool.query('VACUUM (ANALYZE) footprint_refresh_tokens')
    const { rows } = await pool.query<{ rows: number; bytes: number; token_rows: number; token_bytes: string }>(
      `SELECT (SELECT count(*) FROM sessions WHERE id = $1)::int AS rows,
              (SELECT pg_column_size(s.*) FROM sessions AS s WHERE id = $1)::int AS bytes,
              (SELECT count(*) FROM footprint_refresh_tokens)::int AS token_rows,
              pg_total_relation_size('footprint_refresh_tokens') AS token_bytes`,
      [sessionId]
    )
    const row = rows[0]!
    results.push({ rotations: target, sessionRows: row.rows, sessionRowBytes: row.bytes, tokenTableRows: row.token_rows, tokenTableBytes: Number(row.token_bytes) })
  }
  await pool.query('DROP TABLE footprint_refresh_tokens')
  return results
}

// ---------------------------------------------------------------------------
// b. History seeded with SQL.

/**
 * `sessions` sessions whose generations add up to `refreshes`, over users of
 * five sessions each: a third live, a third revoked and a third idle-expired,
 * all within the retention (so retention would keep them), each with the
 * audit event of its login.
 */
async function seedHistory (pool: pg.Pool, sessions: number, refreshes: number): Promise<void> {
  const users = Math.ceil(sessions / 5)
  const generation = Math.floor(refreshes / sessions)
  await pool.query(
    `INSERT INTO users (id, email, password_hash, created_at)
     SELECT md5('history-user-' || g)::uuid, 'history-' || g || '@example.test', '$2b$04$history.user.not.a.real.hash.xxxxxxxxxxxxxxxxxxxxxxxx', now() - interval '60 days'
     FROM generate_series(1, $1) AS g`,
    [users]
  )
  await pool.query(
    `INSERT INTO sessions (id, user_id, client_id, scope, idle_ttl_seconds, user_agent, ip, created_at, last_refreshed_at,
                           idle_expires_at, absolute_expires_at, revoked_at, revoked_reason, generation, refresh_token_hash, recent_retirements)
     SELECT gen_random_uuid(), md5('history-user-' || (g % $1 + 1))::uuid, 'mobile', 'profile', 604800,
            'Mozilla/5.0 (history)', '10.0.0.' || (g % 250), at, at + interval '1 day',
            CASE WHEN g % 3 = 2 THEN at + interval '8 days' ELSE now() + interval '6 days' END,
            at + interval '30 days',
            CASE WHEN g % 3 = 1 THEN at + interval '2 days' END,
            CASE WHEN g % 3 = 1 THEN 'logout' END,
            $2, decode(md5(g::text) || md5(random()::text), 'hex'),
            ARRAY(SELECT at + make_interval(hours => h) FROM generate_series(1, 8) AS h)
     FROM (SELECT g, now() - make_interval(days => 1 + g % 20) AS at FROM generate_series(1, $3) AS g) AS seeded`,
    [users, generation, sessions]
  )
  await pool.query(
    `INSERT INTO audit_events (type, user_id, ip, at, details)
     SELECT 'login_succeeded', s.user_id, s.ip, s.created_at, jsonb_build_object('sessionId', s.id, 'clientId', s.client_id)
     FROM sessions AS s WHERE s.user_agent = 'Mozilla/5.0 (history)'`
  )
  await pool.query('VACUUM (ANALYZE)')
}

async function databaseBytes (pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes')
  return Number(rows[0]!.bytes)
}

// ---------------------------------------------------------------------------
// c. Forged tokens vs rate-limited guesses.

function forgedToken (): string {
  const bytes = randomBytes(69)
  bytes[0] = 1
  return bytes.toString('base64url')
}

type Measured = LoadResult & { cpuMicros: number }

/** Against a service with the login rate limit on (5 a minute per IP and per account). */
async function forgedFlood (service: RunningService, duration: number, rounds: number, connections: number) {
  const [victim] = await benchUsers(service, 1, { setupRemoteAddress: setupAddress() })
  // Spend the victim's budget, so every guess below is answered 429 by the limiter.
  for (let i = 0; i < 10; i++) {
    await service.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: victim!.email, password: 'wrong guess' } })
  }
  const post = { url: service.baseUrl, method: 'POST' as const, path: '/auth/token', headers: { 'content-type': 'application/json' }, connections }
  const forgedBodies = Array.from({ length: 64 }, () => JSON.stringify({ grant_type: 'refresh_token', refresh_token: forgedToken() }))
  const guessBodies = [JSON.stringify({ grant_type: 'password', username: victim!.email, password: 'another wrong guess' })]
  // Each run also reads the service process's CPU time, the cost of an answer
  // that the machine's other load does not skew.
  const measured = async (bodies: string[], status: number, seconds: number) => {
    const cpuBefore = await service.cpuUsage()
    const result = await runLoad({ ...post, duration: seconds, bodies }, status)
    return { ...result, cpuMicros: (await service.cpuUsage()) - cpuBefore }
  }
  const forged = (seconds: number) => measured(forgedBodies, 400, seconds)
  const guesses = (seconds: number) => measured(guessBodies, 429, seconds)
  // Warm both paths, then alternate, so that neither gets the colder JIT or the busier machine.
  await forged(3)
  await guesses(3)
  const runs = { forged: [] as Measured[], guesses: [] as Measured[] }
  for (let round = 0; round < rounds; round++) {
    runs.forged.push(await forged(duration))
    runs.guesses.push(await guesses(duration))
  }
  const answers = (results: Measured[]) => results.reduce((a, r) => a + r.okPerSecond * r.seconds, 0)
  const perSecond = (results: Measured[]) => answers(results) / results.reduce((a, r) => a + r.seconds, 0)
  const cpuPerAnswer = (results: Measured[]) => results.reduce((a, r) => a + r.cpuMicros, 0) / answers(results)
  const statuses = (results: Measured[]) => results.reduce<Record<string, number>>((all, r) => {
    for (const [status, n] of Object.entries(r.statuses)) all[status] = (all[status] ?? 0) + n
    return all
  }, {})
  return {
    forgedPerSecond: perSecond(runs.forged),
    rateLimitedPerSecond: perSecond(runs.guesses),
    forgedCpuMicrosPerAnswer: cpuPerAnswer(runs.forged),
    rateLimitedCpuMicrosPerAnswer: cpuPerAnswer(runs.guesses),
    // The cost of a rate-limited guess over that of a forgery: >= 1 when a forgery costs no more.
    ratio: cpuPerAnswer(runs.guesses) / cpuPerAnswer(runs.forged),
    statuses: { forged: statuses(runs.forged), rateLimited: statuses(runs.guesses) },
  }
}

// ---------------------------------------------------------------------------

export async function runStorageBench (options: StorageBenchOptions): Promise<StorageBenchResult> {
  const log = options.quiet ? () => {} : (text: string) => process.stdout.write(text)
  const emptyDatabase = await benchDatabase('tokenauth_bench_empty')
  const historyDatabase = await benchDatabase('tokenauth_bench_history')
  let empty: RunningService | undefined
  let history: RunningService | undefined
  const emptyPool = new pg.Pool({ connectionString: emptyDatabase.url, max: 2 })
  const historyPool = new pg.Pool({ connectionString: historyDatabase.url, max: 2 })
  try {
    empty = await startService(SERVICE_ENV(emptyDatabase.url, options.poolMax))
    history = await startService(SERVICE_ENV(historyDatabase.url, options.poolMax))

    log('storage: a session\'s footprint...')
    const chain = await footprints(empty, emptyPool, [1, 100, options.rotations])
    log(' done\nstorage: seeding history...')
    const seedStarted = process.hrtime.bigint()
    await seedHistory(historyPool, options.historySessions, options.historyRefreshes)
    const seedSeconds = Number(process.hrtime.bigint() - seedStarted) / 1e9
    log(` ${seedSeconds.toFixed(0)} s\n`)

    const setup = { connections: options.connections, duration: options.duration, rounds: options.rounds, poolMax: options.poolMax, setupRemoteAddress: setupAddress(), setupConcurrency: 4 }
    const emptyUsers = await benchUsers(empty, options.connections, setup)
    const historyUsers = await benchUsers(history, options.connections, setup)
    await measureService(empty, emptyUsers, 0, 3, setup)
    await measureService(history, historyUsers, 0, 3, setup)
    const measurements: StorageBenchResult['history']['measurements'] = []
    for (let round = 1; round <= options.rounds; round++) {
      measurements.push({ ...(await measureService(empty, emptyUsers, round, options.duration, setup)), database: 'empty' })
      measurements.push({ ...(await measureService(history, historyUsers, round, options.duration, setup)), database: 'history' })
      log(`storage: history round ${round}/${options.rounds} done\n`)
    }
    const summary = (database: 'empty' | 'history') => {
      const ms = measurements.filter((m) => m.database === database)
      const ok = ms.reduce((a, m) => a + m.ok, 0)
      const seconds = ms.reduce((a, m) => a + m.seconds, 0)
      return { opsPerSecond: ok / seconds, p99Ms: Math.max(...ms.map((m) => m.latencyMs.p99)) }
    }
    const emptySummary = summary('empty')
    const historySummary = summary('history')

    log('storage: forged-token flood vs rate-limited guesses...')
    await empty.close()
    empty = await startService(SERVICE_ENV(emptyDatabase.url, options.poolMax, 5))
    const flood = await forgedFlood(empty, options.duration, options.rounds, options.connections)
    log(' done\n')

    return {
      footprints: chain,
      history: {
        seededSessions: options.historySessions,
        seededRefreshes: options.historyRefreshes,
        seedSeconds,
        databaseBytes: { empty: await databaseBytes(emptyPool), history: await databaseBytes(historyPool) },
        measurements,
        empty: emptySummary,
        withHistory: historySummary,
        ratio: historySummary.opsPerSecond / emptySummary.opsPerSecond,
      },
      forgedFlood: flood,
    }
  } finally {
    await emptyPool.end()
    await historyPool.end()
    await empty?.close()
    await history?.close()
    await emptyDatabase.drop()
    await historyDatabase.drop()
  }
}

export function storageBenchOptions (): StorageBenchOptions {
  return {
    duration: envInt('BENCH_DURATION', 10),
    rounds: envInt('BENCH_ROUNDS', 2),
    connections: envInt('BENCH_CONNECTIONS', 16),
    poolMax: envInt('BENCH_POOL_MAX', 10),
    historySessions: envInt('BENCH_HISTORY_SESSIONS', 1_000_000),
    historyRefreshes: envInt('BENCH_HISTORY_REFRESHES', 10_000_000),
    rotations: envInt('BENCH_ROTATIONS', 10_000),
  }
}

export function printStorageResult (result: StorageBenchResult): void {
  printTable(
    ['rotations', 'session rows', 'session row bytes', 'one-row-per-token rows', 'one-row-per-token bytes'],
    result.footprints.map((f) => [f.rotations, f.sessionRows, f.sessionRowBytes, f.tokenTableRows, f.tokenTableBytes])
  )
  console.log()
  const h = result.history
  printTable(
    ['database', 'round', 'ops/s', 'p50 ms', 'p99 ms'],
    h.measurements.map((m) => [m.database, m.round, m.opsPerSecond.toFixed(0), m.latencyMs.p50.toFixed(1), m.latencyMs.p99.toFixed(1)])
  )
  console.log(
    `\nhistory: ${h.seededSessions} sessions, ${h.seededRefreshes} refreshes' worth, seeded in ${h.seedSeconds.toFixed(0)} s; ` +
      `database ${(h.databaseBytes.history / 2 ** 20).toFixed(0)} MB vs ${(h.databaseBytes.empty / 2 ** 20).toFixed(0)} MB empty; ` +
      `refresh ${h.withHistory.opsPerSecond.toFixed(0)} ops/s (p99 ${h.withHistory.p99Ms.toFixed(1)} ms) vs ${h.empty.opsPerSecond.toFixed(0)} ops/s (p99 ${h.empty.p99Ms.toFixed(1)} ms): ratio ${h.ratio.toFixed(2)}`
  )
  const f = result.forgedFlood
  console.log(
    `forged refresh tokens: ${f.forgedPerSecond.toFixed(0)} answers/s, ${f.forgedCpuMicrosPerAnswer.toFixed(0)} µs CPU each; ` +
      `rate-limited password guesses: ${f.rateLimitedPerSecond.toFixed(0)} answers/s, ${f.rateLimitedCpuMicrosPerAnswer.toFixed(0)} µs CPU each; ratio of costs ${f.ratio.toFixed(2)} ` +
      `(${JSON.stringify(f.statuses)})`
  )
}

async function main () {
  const options = storageBenchOptions()
  const info = machine()
  console.log(`storage: ${info.cores} cores (${info.cpu}), Node ${info.node}; ${JSON.stringify(options)}`)
  const result = await runStorageBench(options)
  console.log()
  printStorageResult(result)
  const path = await writeResults('storage.json', { at: new Date().toISOString(), machine: info, settings: options, ...result })
  console.log(`results written to ${path}`)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
