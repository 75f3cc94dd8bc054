/**
 * Refresh-token rotation throughput: the service (HTTP, validation, the
 * rotation statement through Prisma, an ES256 access token) against the floor
 * of the same rotation done as raw SQL with pg, at the same concurrency, in
 * one run on one machine.
 *
 *   npx tsx bench/refresh.ts
 *
 * Environment: DATABASE_URL (default: a fresh database on
 * postgresql://root@127.0.0.1:5432, dropped afterwards), BENCH_CONNECTIONS
 * (16), BENCH_DURATION seconds per measurement (10), BENCH_ROUNDS (2),
 * BENCH_POOL_MAX (10, the service's DATABASE_POOL_MAX default; the baseline
 * uses the same pool size).
 */
import { createHmac, randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { benchDatabase, envInt, machine, percentile, printTable, runLoadProcess, startService, writeResults, type RunningService } from './lib.js'

export interface RefreshBenchOptions {
  /** Concurrent chains (autocannon connections / baseline loops). */
  connections: number
  /** Seconds per measurement. */
  duration: number
  /** Service/baseline pairs. */
  rounds: number
  /** Pool size of the baseline; the service must run with DATABASE_POOL_MAX equal to it. */
  poolMax: number
  warmup?: number
  /** Setup logins run from this address (app.inject), so that they do not spend 127.0.0.1's login rate limit. */
  setupRemoteAddress?: string
  /** Setup logins at once (bcrypt at the service's cost dominates setup). */
  setupConcurrency?: number
  quiet?: boolean
}

export interface RefreshBenchResult {
  measurements: Measurement[]
  totals: {
    service: { ok: number; seconds: number; errors: number; opsPerSecond: number }
    baseline: { ok: number; seconds: number; errors: number; opsPerSecond: number }
    ratio: number
  }
  /** Rows in sessions at the end: the service's whole refresh-token storage, one per login whatever the rotations. */
  sanity: { revokedSessions: number; sessionRows: number }
}

export interface Measurement {
  kind: 'service' | 'baseline'
  round: number
  seconds: number
  ok: number
  errors: number
  opsPerSecond: number
  latencyMs: { p50: number; p99: number; mean: number }
}

// ---------------------------------------------------------------------------
// Load generator: autocannon in a child process (bench/load-worker.cjs,
// 'refresh' mode), so that the client shares neither the server's event loop
// nor its memory. Tokens rotate, so every request must carry a fresh one:
// setupRequest takes a live token from a pool and onResponse puts its
// successor back. Each token is presented exactly once.

async function runLoad (url: string, tokens: string[], duration: number, connections: number) {
  const result = await runLoadProcess({
    url,
    method: 'POST',
    path: '/auth/token',
    headers: { 'content-type': 'application/json' },
    tokens,
    connections,
    duration,
  })
  const { latencies } = result
  return {
    ...result,
    duration: result.seconds,
    latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), mean: latencies.reduce((a, b) => a + b, 0) / latencies.length },
  }
}

// ---------------------------------------------------------------------------
// Setup: users and sessions through the service's own endpoints.

async function login (service: RunningService, email: string, password: string, remoteAddress?: string): Promise<string> {
  const response = await service.inject({
    method: 'POST',
    url: '/auth/token',
    ...(remoteAddress ? { remoteAddress } : {}),
    payload: { grant_type: 'password', username: email, password },
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return (JSON.parse(response.body) as { refresh_token: string }).refresh_token
}

/** `count` fresh sessions' refresh tokens, spread over the users. */
async function sessions (service: RunningService, users: { email: string; password: string }[], count: number, options: RefreshBenchOptions): Promise<string[]> {
  const tokens: string[] = new Array(count)
  let next = 0
  const concurrency = Math.max(1, options.setupConcurrency ?? 1)
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const user = users[i % users.length]!
        tokens[i] = await login(service, user.email, user.password, options.setupRemoteAddress)
      }
    })
  )
  return tokens
}

/** One measurement of refresh rotation over HTTP: fresh sessions of `users`, rotated as fast as they go for `duration` seconds. */
export async function measureService (service: RunningService, users: { email: string; password: string }[], round: number, duration: number, options: RefreshBenchOptions): Promise<Measurement> {
  // Twice as many live tokens as connections: spares for chains lost to errors.
  const tokens = await sessions(service, users, 2 * options.connections, options)
  const result = await runLoad(service.baseUrl, tokens, duration, options.connections)
  const errors = result.retryable + result.refused + result.errors
  if (errors > 0) console.warn(`service round ${round}: ${errors} failed requests ${JSON.stringify(result.statuses)}`)
  return {
    kind: 'service',
    round,
    seconds: result.duration,
    ok: result.ok,
    errors,
    opsPerSecond: result.ok / result.duration,
    latencyMs: result.latency,
  }
}

// ---------------------------------------------------------------------------
// Baseline: the rotation alone, as raw SQL with pg, one transaction per
// rotation, as a table of one row per token does it (the service's layout
// before DESIGN §3.13, kept here as the floor to beat): retire the presented
// token with a conditional UPDATE and insert its successor. Same concurrency,
// same pool size. The table is the old refresh_tokens, word for word, in the
// bench's own database.

const BASELINE_TABLE = `
  CREATE TABLE IF NOT EXISTS baseline_refresh_tokens (
    id UUID NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE ON UPDATE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    parent_id UUID UNIQUE REFERENCES baseline_refresh_tokens (id) ON DELETE SET NULL ON UPDATE CASCADE,
    created_at TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    retired_at TIMESTAMPTZ(3)
  );
  CREATE INDEX IF NOT EXISTS baseline_refresh_tokens_session_id_idx ON baseline_refresh_tokens (session_id)`

interface Chain {
  hash: Buffer
}

/** One chain per session, each starting from a fresh token row. */
async function baselineChains (pool: pg.Pool, sessionIds: string[], hash: (token: string) => Buffer): Promise<Chain[]> {
  await pool.query(BASELINE_TABLE)
  return Promise.all(
    sessionIds.map(async (sessionId) => {
      const chain = { hash: hash(randomBytes(32).toString('base64url')) }
      await pool.query('INSERT INTO baseline_refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [sessionId, chain.hash])
      return chain
    })
  )
}

async function measureBaseline (pool: pg.Pool, chains: Chain[], hash: (token: string) => Buffer, round: number, duration: number): Promise<Measurement> {
  const latencies: number[] = []
  let ok = 0
  let errors = 0
  const start = process.hrtime.bigint()
  const deadline = Date.now() + duration * 1000
  await Promise.all(
    chains.map(async (chain) => {
      while (Date.now() < deadline) {
        const began = process.hrtime.bigint()
        const successor = hash(randomBytes(32).toString('base64url'))
        const client = await pool.connect()
        try {
          await client.query('BEGIN')
          const retired = await client.query<{ id: string; session_id: string }>(
            'UPDATE baseline_refresh_tokens SET retired_at = now() WHERE token_hash = $1 AND retired_at IS NULL RETURNING id, session_id',
            [chain.hash]
          )
          const row = retired.rows[0]
          if (!row) throw new Error('baseline chain broken: token not live')
          await client.query('INSERT INTO baseline_refresh_tokens (session_id, token_hash, parent_id, created_at) VALUES ($1, $2, $3, now())', [
            row.session_id,
            successor,
            row.id,
          ])
          await client.query('COMMIT')
          chain.hash = successor
          ok++
          latencies.push(Number(process.hrtime.bigint() - began) / 1e6)
        } catch (error) {
          errors++
          await client.query('ROLLBACK').catch(() => {})
          if (errors === 1) console.warn(`baseline: ${(error as Error).message}`)
        } finally {
          client.release()
        }
      }
    })
  )
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return {
    kind: 'baseline',
    round,
    seconds,
    ok,
    errors,
    opsPerSecond: ok / seconds,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), mean: latencies.reduce((a, b) => a + b, 0) / latencies.length },
  }
}

// ---------------------------------------------------------------------------

/** `count` new users of the service, signed up through its API. */
export async function benchUsers (service: RunningService, count: number, options: Pick<RefreshBenchOptions, 'setupRemoteAddress'> = {}): Promise<{ email: string; password: string }[]> {
  const tag = randomBytes(4).toString('hex')
  const users = Array.from({ length: count }, (_, i) => ({ email: `bench-${tag}-${i}@example.test`, password: `bench password ${i} ${randomBytes(4).toString('hex')}` }))
  // A few at a time: sign-ups hash passwords, and the setup should not trip the service's bcrypt queue bound.
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(4, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const response = await service.inject({
          method: 'POST',
          url: '/auth/signup',
          payload: users[i],
          ...(options.setupRemoteAddress ? { remoteAddress: options.setupRemoteAddress } : {}),
        })
        if (response.statusCode !== 201) throw new Error(`signup failed: ${response.statusCode} ${response.body}`)
      }
    })
  )
  return users
}

/**
 * Runs the rotation benchmark against a running service (whose
 * DATABASE_POOL_MAX should equal `options.poolMax`) and its database: signs up
 * `connections` users, then alternates service and baseline rounds.
 */
export async function runRefreshBench (service: RunningService, databaseUrl: string, options: RefreshBenchOptions): Promise<RefreshBenchResult> {
  const { connections, duration, rounds, poolMax } = options
  const warmup = options.warmup ?? 3
  const log = options.quiet ? () => {} : (text: string) => process.stdout.write(text)
  const users = await benchUsers(service, connections, options)

  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolMax })
  try {
    // The service's hash: HMAC-SHA-256 under a server key.
    const hashKey = randomBytes(32)
    const hash = (token: string) => createHmac('sha256', hashKey).update(token).digest()
    const { rows: signups } = await pool.query<{ id: string }>('SELECT id FROM sessions ORDER BY created_at DESC LIMIT $1', [connections])
    const chains = await baselineChains(pool, signups.map((row) => row.id), hash)
    const { rows: before } = await pool.query<{ revoked: string }>('SELECT count(*) AS revoked FROM sessions WHERE revoked_at IS NOT NULL')

    log('refresh: warming up...')
    await measureService(service, users, 0, warmup, options)
    await measureBaseline(pool, chains, hash, 0, warmup)
    log(' done\n')

    const measurements: Measurement[] = []
    for (let round = 1; round <= rounds; round++) {
      // Alternate, so that drift in the machine's load hits both sides alike.
      measurements.push(await measureService(service, users, round, duration, options))
      measurements.push(await measureBaseline(pool, chains, hash, round, duration))
      log(`refresh: round ${round}/${rounds} done\n`)
    }

    const total = (kind: Measurement['kind']) => {
      const ms = measurements.filter((m) => m.kind === kind)
      const ok = ms.reduce((a, m) => a + m.ok, 0)
      const seconds = ms.reduce((a, m) => a + m.seconds, 0)
      return { ok, seconds, errors: ms.reduce((a, m) => a + m.errors, 0), opsPerSecond: ok / seconds }
    }
    const serviceTotal = total('service')
    const baselineTotal = total('baseline')
    const { rows } = await pool.query<{ revoked: string; sessions: string }>(
      'SELECT (SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL) AS revoked, (SELECT count(*) FROM sessions) AS sessions'
    )
    return {
      measurements,
      totals: { service: serviceTotal, baseline: baselineTotal, ratio: serviceTotal.opsPerSecond / baselineTotal.opsPerSecond },
      sanity: { revokedSessions: Number(rows[0]!.revoked) - Number(before[0]!.revoked), sessionRows: Number(rows[0]!.sessions) },
    }
  } finally {
    await pool.end()
  }
}

async function main () {
  const CONNECTIONS = envInt('BENCH_CONNECTIONS', 16)
  const DURATION = envInt('BENCH_DURATION', 10)
  const ROUNDS = envInt('BENCH_ROUNDS', 2)
  const POOL_MAX = envInt('BENCH_POOL_MAX', 10)
  const database = await benchDatabase('tokenauth_bench')
  let service: RunningService | undefined
  try {
    service = await startService({
      DATABASE_URL: database.url,
      DATABASE_POOL_MAX: String(POOL_MAX),
      // Only the setup logins hash passwords; refresh never does.
      BCRYPT_COST: '4',
    })
    const info = machine()
    console.log(
      `refresh rotation: ${CONNECTIONS} concurrent chains, ${DURATION} s x ${ROUNDS} rounds each, pool max ${POOL_MAX}; ` +
        `${info.cores} cores (${info.cpu}), Node ${info.node}; database ${database.created ? 'fresh, local Postgres' : 'DATABASE_URL'}`
    )
    const result = await runRefreshBench(service, database.url, { connections: CONNECTIONS, duration: DURATION, rounds: ROUNDS, poolMax: POOL_MAX })
    const { measurements, totals, sanity } = result

    console.log()
    printTable(
      ['measurement', 'round', 'ops/s', 'ok', 'errors', 'p50 ms', 'p99 ms'],
      measurements.map((m) => [
        m.kind === 'service' ? 'service: POST /auth/token (refresh)' : 'baseline: raw SQL UPDATE+INSERT tx',
        m.round,
        m.opsPerSecond.toFixed(0),
        m.ok,
        m.errors,
        m.latencyMs.p50.toFixed(1),
        m.latencyMs.p99.toFixed(1),
      ])
    )
    console.log()
    printTable(
      ['total', 'ops/s', 'ok', 'errors'],
      [
        ['service', totals.service.opsPerSecond.toFixed(0), totals.service.ok, totals.service.errors],
        ['baseline', totals.baseline.opsPerSecond.toFixed(0), totals.baseline.ok, totals.baseline.errors],
        ['ratio service/baseline', totals.ratio.toFixed(2), '', ''],
      ]
    )
    console.log(`\ncores ${info.cores}, Node ${info.node}; sessions revoked by reuse detection: ${sanity.revokedSessions} (must be 0); sessions rows (all the service keeps of its refresh tokens): ${sanity.sessionRows}`)

    const path = await writeResults('refresh.json', {
      at: new Date().toISOString(),
      machine: info,
      settings: { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS, poolMax: POOL_MAX },
      ...result,
    })
    console.log(`results written to ${path}`)
  } finally {
    await service?.close()
    await database.drop()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
