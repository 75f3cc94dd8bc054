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
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import pg from 'pg'
import { benchDatabase, envInt, machine, percentile, printTable, startService, writeResults, type RunningService } from './lib.js'

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 16)
const DURATION = envInt('BENCH_DURATION', 10)
const ROUNDS = envInt('BENCH_ROUNDS', 2)
const POOL_MAX = envInt('BENCH_POOL_MAX', 10)
const WARMUP = 3

interface Measurement {
  kind: 'service' | 'baseline'
  round: number
  seconds: number
  ok: number
  errors: number
  opsPerSecond: number
  latencyMs: { p50: number; p99: number; mean: number }
}

// ---------------------------------------------------------------------------
// Load generator: autocannon in a worker thread, so that the client does not
// share the server's event loop. Tokens rotate, so every request must carry a
// fresh one: setupRequest takes a live token from a pool and onResponse puts
// its successor back. Each token is presented exactly once.

const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const autocannon = require(workerData.autocannonPath)
const pool = workerData.tokens.slice()
let ok = 0, retryable = 0, refused = 0
const statuses = {}
const options = {
  url: workerData.url,
  connections: workerData.connections,
  duration: workerData.duration,
  pipelining: 1,
  timeout: 10,
  requests: [{
    method: 'POST',
    path: '/auth/token',
    headers: { 'content-type': 'application/json' },
    setupRequest(request, context) {
      const token = pool.pop()
      if (token === undefined) throw new Error('no live refresh token left')
      context.token = token
      return { ...request, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: token }) }
    },
    onResponse(status, body, context) {
      statuses[status] = (statuses[status] || 0) + 1
      if (status === 200) {
        ok++
        pool.push(JSON.parse(body).refresh_token)
      } else if (status === 429 || status >= 500) {
        retryable++
        pool.push(context.token) // not rotated: still live
      } else {
        refused++ // a chain lost; the pool has spares
      }
    },
  }],
}
autocannon(options, (error, raw) => {
  // In a worker thread autocannon leaves the histograms encoded.
  const result = raw && autocannon.aggregateResult([raw], options)
  parentPort.postMessage({
    error: error ? String(error) : null,
    ok, retryable, refused, statuses,
    duration: result && result.duration,
    latency: result && { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average },
    errors: result ? result.errors + result.timeouts : 0,
  })
})
`

interface LoadResult {
  error: string | null
  ok: number
  retryable: number
  refused: number
  statuses: Record<string, number>
  duration: number
  latency: { p50: number; p99: number; mean: number }
  errors: number
}

function runLoad(url: string, tokens: string[], duration: number): Promise<LoadResult> {
  const autocannonPath = createRequire(import.meta.url).resolve('autocannon')
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, {
      eval: true,
      workerData: { autocannonPath, url, tokens, connections: CONNECTIONS, duration },
    })
    worker.once('message', (message: LoadResult) => {
      void worker.terminate()
      if (message.error) reject(new Error(message.error))
      else resolve(message)
    })
    worker.once('error', reject)
  })
}

// ---------------------------------------------------------------------------
// Setup: users and sessions through the service's own endpoints.

async function login(service: RunningService, email: string, password: string): Promise<string> {
  const response = await service.app.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'password', username: email, password },
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return (JSON.parse(response.body) as { refresh_token: string }).refresh_token
}

/** `count` fresh sessions' refresh tokens, spread over CONNECTIONS users. */
async function sessions(service: RunningService, users: { email: string; password: string }[], count: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < count; i++) tokens.push(await login(service, users[i % users.length]!.email, users[i % users.length]!.password))
  return tokens
}

async function measureService(service: RunningService, users: { email: string; password: string }[], round: number, duration: number): Promise<Measurement> {
  // Twice as many live tokens as connections: spares for chains lost to errors.
  const tokens = await sessions(service, users, 2 * CONNECTIONS)
  const result = await runLoad(service.baseUrl, tokens, duration)
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
// rotation: retire the presented token (the same conditional UPDATE the
// service relies on) and insert its successor. Same concurrency, same pool size.

interface Chain {
  hash: Buffer
}

async function measureBaseline(pool: pg.Pool, chains: Chain[], hash: (token: string) => Buffer, round: number, duration: number): Promise<Measurement> {
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
            'UPDATE refresh_tokens SET retired_at = now() WHERE token_hash = $1 AND retired_at IS NULL RETURNING id, session_id',
            [chain.hash],
          )
          const row = retired.rows[0]
          if (!row) throw new Error('baseline chain broken: token not live')
          await client.query('INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at) VALUES ($1, $2, $3, now())', [
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
    }),
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

const database = await benchDatabase('tokenauth_bench')
let service: RunningService | undefined
let pool: pg.Pool | undefined
try {
  service = await startService({
    DATABASE_URL: database.url,
    DATABASE_POOL_MAX: String(POOL_MAX),
    // Only the setup logins hash passwords; refresh never does.
    BCRYPT_COST: '4',
  })
  const users = Array.from({ length: CONNECTIONS }, (_, i) => ({ email: `bench-${i}@example.test`, password: `bench password ${i} ${randomBytes(4).toString('hex')}` }))
  for (const user of users) {
    const response = await service.app.inject({ method: 'POST', url: '/auth/signup', payload: user })
    if (response.statusCode !== 201) throw new Error(`signup failed: ${response.statusCode} ${response.body}`)
  }

  pool = new pg.Pool({ connectionString: database.url, max: POOL_MAX })
  const sessionStore = service.app.sessions
  const hash = (token: string) => Buffer.from(sessionStore.hashRefreshToken(token))
  const chains: Chain[] = (await sessions(service, users, CONNECTIONS)).map((token) => ({ hash: hash(token) }))

  const info = machine()
  console.log(
    `refresh rotation: ${CONNECTIONS} concurrent chains, ${DURATION} s x ${ROUNDS} rounds each, pool max ${POOL_MAX}; ` +
      `${info.cores} cores (${info.cpu}), Node ${info.node}; database ${database.created ? 'fresh, local Postgres' : 'DATABASE_URL'}`,
  )
  process.stdout.write('warming up...')
  await measureService(service, users, 0, WARMUP)
  await measureBaseline(pool, chains, hash, 0, WARMUP)
  console.log(' done')

  const measurements: Measurement[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate, so that drift in the machine's load hits both sides alike.
    measurements.push(await measureService(service, users, round, DURATION))
    measurements.push(await measureBaseline(pool, chains, hash, round, DURATION))
  }

  const total = (kind: Measurement['kind']) => {
    const ms = measurements.filter((m) => m.kind === kind)
    const ok = ms.reduce((a, m) => a + m.ok, 0)
    const seconds = ms.reduce((a, m) => a + m.seconds, 0)
    return { ok, seconds, errors: ms.reduce((a, m) => a + m.errors, 0), opsPerSecond: ok / seconds }
  }
  const serviceTotal = total('service')
  const baselineTotal = total('baseline')
  const ratio = serviceTotal.opsPerSecond / baselineTotal.opsPerSecond

  const { rows } = await pool.query<{ revoked: string; tokens: string }>(
    'SELECT (SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL) AS revoked, (SELECT count(*) FROM refresh_tokens) AS tokens',
  )

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
    ]),
  )
  console.log()
  printTable(
    ['total', 'ops/s', 'ok', 'errors'],
    [
      ['service', serviceTotal.opsPerSecond.toFixed(0), serviceTotal.ok, serviceTotal.errors],
      ['baseline', baselineTotal.opsPerSecond.toFixed(0), baselineTotal.ok, baselineTotal.errors],
      ['ratio service/baseline', ratio.toFixed(2), '', ''],
    ],
  )
  console.log(`\ncores ${info.cores}, Node ${info.node}; sessions revoked by reuse detection: ${rows[0]!.revoked} (must be 0); refresh_tokens rows: ${rows[0]!.tokens}`)

  const path = await writeResults('refresh.json', {
    at: new Date().toISOString(),
    machine: info,
    settings: { connections: CONNECTIONS, durationSeconds: DURATION, rounds: ROUNDS, poolMax: POOL_MAX },
    measurements,
    totals: { service: serviceTotal, baseline: baselineTotal, ratio },
    sanity: { revokedSessions: Number(rows[0]!.revoked), refreshTokens: Number(rows[0]!.tokens) },
  })
  console.log(`results written to ${path}`)
} finally {
  await pool?.end()
  await service?.close()
  await database.drop()
}
