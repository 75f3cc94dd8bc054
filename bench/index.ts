/**
 * `npm run bench`: the seven performance figures of the service, each measured
 * beside its baseline in the same run on the same machine, as ratios.
 *
 *   1. GET /users/me with a valid access token vs a bare Fastify answering the
 *      same JSON in its own process (req/s, median of alternating rounds),
 *      target >= 0.8; and vs a bare route on the service's own instance (every
 *      global hook, no authentication: the cost of authentication alone).
 *   2. Refresh rotation over HTTP vs the same rotation as raw SQL with pg, in
 *      a table of one row per token (an UPDATE and an INSERT in one
 *      transaction; ops/s, same concurrency, same pool size), target >= 1.0:
 *      the service rotates with one UPDATE of one row (DESIGN §3.13).
 *   3. Password logins/s through the authorization challenge endpoint (DESIGN
 *      §3.16, each answering a code) vs the bcrypt bound (cores / time of one
 *      hash at the configured cost), target >= 0.85.
 *   4. p99 of authenticated requests at a fixed rate while a login flood runs
 *      at the rate limit vs their p99 when idle, target <= 3.
 *   5. Peak RSS of the service process through the whole bench, target <= 200 MB;
 *      and of the service on its embedded database (no DATABASE_URL, a fresh
 *      DATA_DIR) through sign-ups, logins, refreshes and authenticated
 *      requests, target <= 250 MB.
 *   6. Storage (bench/storage.ts): a session's rows and bytes after 1, 100 and
 *      10,000 rotations (one row, fixed size); refresh on a database holding
 *      10 million refreshes' worth of history vs an empty one, target >= 0.9;
 *      CPU per answer of rate-limited password guesses over that of forged
 *      refresh tokens, target >= 1.0 (a forgery costs no more).
 *   7. Authorization-code exchanges per second (code + PKCE, an ID token
 *      signed beside the access token) vs refreshes per second, same
 *      concurrency, alternating rounds (bench/code-exchange.ts), target >= 0.8.
 *   8. CPU per request of figure 1's workload with METRICS_PORT set and
 *      scraped every second vs unset, two services on one database,
 *      alternating rounds (bench/metrics-overhead.ts), target <= 1.03.
 *   9. Events (webhooks, bench/events.ts), on services of its own on this
 *      database after the others: delivery throughput to a loopback
 *      receiver, events/s, target >= 1,000 (and with two instances, no
 *      webhook-id twice); the oldest pending event under 100 changes/s
 *      through the admin API, target < 2 s; password logins/s with an
 *      event per login vs without, target >= 0.97.
 *
 * The service runs as `npm start` runs it (`node dist/src/server.js`, in its
 * own process, see startService) at its real settings (BCRYPT_COST 12 unless
 * set, AUTH_RATE_LIMIT_PER_MINUTE set so that the flood of figure 4, sent at
 * exactly the limit, keeps every core busy with bcrypt); autocannon runs in
 * other child processes (bench/load-worker.cjs); the baselines that are not
 * HTTP (raw SQL, bcrypt) run in this process.
 *
 * Environment: DATABASE_URL (default: a fresh database on
 * postgresql://root@127.0.0.1:5432, dropped afterwards), BCRYPT_COST (12),
 * BENCH_DURATION seconds per measurement (10), BENCH_ROUNDS (2),
 * BENCH_HTTP_CONNECTIONS (32), BENCH_HTTP_DURATION (5) and BENCH_HTTP_ROUNDS (5) for figure 1, BENCH_CONNECTIONS (16, figure 2),
 * BENCH_POOL_MAX (10), BENCH_LATENCY_RATE (500 req/s, figure 4),
 * AUTH_RATE_LIMIT_PER_MINUTE (default: the bcrypt bound x 60, rounded up),
 * BENCH_FIGURES (1,2,3,4,5,6,7,8,9: a subset to run; the Postgres service's RSS is
 * always reported, the embedded one's with 5), and figure 6's and 9's own
 * (bench/storage.ts, bench/events.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcrypt'
import { measureCodeExchange } from './code-exchange.js'
import { eventsBenchOptions, eventsFigures, eventsNote, measureEvents, type EventsResult } from './events.js'
import { measureMetricsOverhead } from './metrics-overhead.js'
import {
  benchDatabase,
  envInt,
  machine,
  percentile,
  printTable,
  runLoad,
  serviceNodeFlags,
  serviceResponseHeaders,
  startBareFastify,
  startService,
  writeResults,
  type Figure,
  type LoadOptions,
  type LoadResult,
  type RunningService,
} from './lib.js'
import { runRefreshBench, type RefreshBenchResult } from './refresh.js'
import { printStorageResult, runStorageBench, storageBenchOptions, type StorageBenchResult } from './storage.js'

const DURATION = envInt('BENCH_DURATION', 10)
const ROUNDS = envInt('BENCH_ROUNDS', 2)
const HTTP_CONNECTIONS = envInt('BENCH_HTTP_CONNECTIONS', 32)
// Figure 1: the bare route swings by half from one run to the next here, so
// many short alternating rounds and their median rather than two long ones.
const HTTP_DURATION = envInt('BENCH_HTTP_DURATION', 5)
const HTTP_ROUNDS = envInt('BENCH_HTTP_ROUNDS', 5)
const REFRESH_CONNECTIONS = envInt('BENCH_CONNECTIONS', 16)
const POOL_MAX = envInt('BENCH_POOL_MAX', 10)
const LATENCY_RATE = envInt('BENCH_LATENCY_RATE', 500)
const BCRYPT_COST = envInt('BCRYPT_COST', 12)
const WARMUP = 3
const MB = 1024 * 1024
/** Setup requests (sign-ups, the logins that open sessions) come from this address, so they do not spend 127.0.0.1's login budget. */
const SETUP_ADDRESS = '10.255.0.1'
/** The embedded database's target: it runs inside the service process, so its memory is the service's. */
const EMBEDDED_RSS_TARGET_MB = 250
const EMBEDDED_USERS = 32
const EMBEDDED_ROTATIONS = 10
/** BENCH_FIGURES=1,4 runs those figures only (the Postgres service's RSS is always reported; the embedded one's with 5). */
const FIGURES = new Set((process.env.BENCH_FIGURES ?? '1,2,3,4,5,6,7,8,9').split(',').map((x) => Number(x.trim())))
const want = (figure: number) => FIGURES.has(figure)

const log = (text: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
const mean = (xs: number[]) => sum(xs) / xs.length

/** Median wall time of one bcrypt hash at `cost`, hashes run one at a time. */
async function bcryptHashSeconds (cost: number, samples = 5): Promise<number> {
  await bcrypt.hash('warm-up', cost)
  const times: number[] = []
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint()
    await bcrypt.hash(`bench password ${i}`, cost)
    times.push(Number(process.hrtime.bigint() - start) / 1e9)
  }
  return percentile(times, 50)
}

/**
 * Waits until the logins queued by a flood have been served: libuv's pool is
 * first in, first out, so one more login answers after all of them.
 */
async function drainBcrypt (service: RunningService, user: { email: string; password: string }): Promise<void> {
  await accessToken(service, user.email, user.password)
}

/** Hashes per second with `jobs` hashes always in flight for `seconds`: what bcrypt achieves on this machine under its current load. */
async function bcryptParallelRate (cost: number, jobs: number, seconds: number): Promise<number> {
  let done = 0
  const start = process.hrtime.bigint()
  const deadline = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (Date.now() < deadline) {
        await bcrypt.hash('bench password', cost)
        done++
      }
    })
  )
  return done / (Number(process.hrtime.bigint() - start) / 1e9)
}

async function signup (service: RunningService, email: string, password: string): Promise<void> {
  const response = await service.inject({ method: 'POST', url: '/auth/signup', payload: { email, password }, remoteAddress: SETUP_ADDRESS })
  if (response.statusCode !== 201) throw new Error(`signup failed: ${response.statusCode} ${response.body}`)
}

async function accessToken (service: RunningService, email: string, password: string): Promise<string> {
  const response = await service.inject({
    method: 'POST',
    url: '/auth/token',
    payload: { grant_type: 'password', username: email, password },
    remoteAddress: SETUP_ADDRESS,
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return (JSON.parse(response.body) as { access_token: string }).access_token
}

const info = machine()
const startedAt = new Date()

// The bcrypt bound, measured before the service starts, sets the rate limit
// of figure 4: a flood at exactly the limit then keeps every core hashing.
const hashSecondsAtStart = await bcryptHashSeconds(BCRYPT_COST)
const boundAtStart = info.cores / hashSecondsAtStart
const rateLimitPerMinute = envInt('AUTH_RATE_LIMIT_PER_MINUTE', Math.ceil(boundAtStart * 60))

const nodeFlags = serviceNodeFlags()

const database = await benchDatabase('tokenauth_bench')
let service: RunningService | undefined
try {
  // The service process also serves figure 1's second baseline, GET /bench/bare: a
  // trivial route on the same instance (same hooks, logger, server options).
  service = await startService({
    DATABASE_URL: database.url,
    DATABASE_POOL_MAX: String(POOL_MAX),
    BCRYPT_COST: String(BCRYPT_COST),
    AUTH_RATE_LIMIT_PER_MINUTE: String(rateLimitPerMinute),
  })
  const started = await service.stats()
  log(
    `bench: ${info.cores} cores (${info.cpu}), Node ${info.node}; load average ${loadAverage()}; ` +
      `BCRYPT_COST ${BCRYPT_COST} (${(hashSecondsAtStart * 1000).toFixed(0)} ms/hash), AUTH_RATE_LIMIT_PER_MINUTE ${rateLimitPerMinute}; ` +
      `${DURATION} s x ${ROUNDS} rounds; database ${database.created ? 'fresh, local Postgres' : 'DATABASE_URL'}; ` +
      `service: node ${[...nodeFlags, 'dist/src/server.js'].join(' ')} (pid ${service.pid})`
  )

  const tag = randomBytes(4).toString('hex')
  const users = Array.from({ length: 32 }, (_, i) => ({ email: `load-${tag}-${i}@example.test`, password: `load password ${i} ${tag}` }))
  await Promise.all(users.map((u) => signup(service!, u.email, u.password)))
  const token = await accessToken(service, users[0]!.email, users[0]!.password)
  const authorization = { authorization: `Bearer ${token}` }
  const check = await service.inject({ method: 'GET', url: '/users/me', headers: authorization })
  if (check.statusCode !== 200) throw new Error(`GET /users/me answered ${check.statusCode} ${check.body}`)

  const figures: Figure[] = []
  const bare = { url: service.baseUrl, path: '/bench/bare', connections: HTTP_CONNECTIONS }
  const me = { url: service.baseUrl, path: '/users/me', headers: authorization, connections: HTTP_CONNECTIONS }
  // A login is the first-party sign-in of DESIGN §3.16: the authorization challenge endpoint checks the
  // password and answers the code (its exchange at the token endpoint costs no bcrypt).
  const pkceChallenge = randomBytes(32).toString('base64url')
  const loginBodies = users.map((u) => JSON.stringify({
    client_id: 'mobile', response_type: 'code', code_challenge: pkceChallenge.slice(0, 43), code_challenge_method: 'S256', username: u.email, password: u.password,
  }))
  const login = {
    url: service.baseUrl,
    method: 'POST' as const,
    path: '/oauth/authorize-challenge',
    headers: { 'content-type': 'application/json' },
    bodies: loginBodies,
  }
  const rate = (runs: LoadResult[]) => sum(runs.map((r) => r.okPerSecond * r.seconds)) / sum(runs.map((r) => r.seconds))
  let refresh: RefreshBenchResult | undefined
  let hashSeconds = hashSecondsAtStart
  let parallelNote = ''
  let figure1Note = ''
  const floodLoopDelays: number[] = []

  // ---- 1. Authenticated request vs a bare Fastify, and vs a bare route -----
  if (want(1)) {
    log('figure 1: GET /users/me vs a bare Fastify in its own process, and vs a bare route of the service')
    // The headline baseline answers the service's own body, so the bytes on the wire match.
    const fastify = await startBareFastify(check.body)
    // Not a target's baseline: the same bare Fastify with the response headers
    // the service must send on every answer, to show what they alone cost.
    const withHeaders = await startBareFastify(check.body, serviceResponseHeaders(check.headers))
    try {
      const bareFastify = { url: fastify.baseUrl, path: '/users/me', headers: authorization, connections: HTTP_CONNECTIONS }
      const headersFastify = { ...bareFastify, url: withHeaders.baseUrl }
      for (const side of [bareFastify, headersFastify, me, bare]) await runLoad({ ...side, duration: WARMUP })
      // The load and the CPU time the serving process used for it: its CPU per
      // request says what it costs even when the machine's load skews req/s.
      const measure = async (side: Omit<LoadOptions, 'duration'>, server: { cpuUsage(): Promise<number> }) => {
        const before = await server.cpuUsage()
        const run = await runLoad({ ...side, duration: HTTP_DURATION })
        return { run, cpuUsPerRequest: ((await server.cpuUsage()) - before) / run.requests }
      }
      // Alternating: bare Fastify, the same with headers, /users/me, bare
      // route, then again; each round's ratios pair /users/me with the
      // baselines measured beside it.
      const rounds: Record<'fastify' | 'headers' | 'me' | 'bare', { run: LoadResult; cpuUsPerRequest: number }>[] = []
      for (let round = 1; round <= HTTP_ROUNDS; round++) {
        const f = await measure(bareFastify, fastify)
        const h = await measure(headersFastify, withHeaders)
        const m = await measure(me, service)
        const b = await measure(bare, service)
        rounds.push({ fastify: f, headers: h, me: m, bare: b })
        log(
          `  round ${round}: bare Fastify ${f.run.okPerSecond.toFixed(0)}, with headers ${h.run.okPerSecond.toFixed(0)}, ` +
            `/users/me ${m.run.okPerSecond.toFixed(0)}, bare route ${b.run.okPerSecond.toFixed(0)} req/s; ` +
            `CPU per request ${[f, h, m, b].map((x) => x.cpuUsPerRequest.toFixed(1)).join(', ')} µs; load average ${loadAverage()}`
        )
      }
      const median = (xs: number[]) => percentile(xs, 50)
      const toFastify = rounds.map((r) => r.me.run.okPerSecond / r.fastify.run.okPerSecond)
      const toBareRoute = rounds.map((r) => r.me.run.okPerSecond / r.bare.run.okPerSecond)
      // CPU per request of the baseline over the service's: what the req/s ratio would be were the service's CPU the only limit.
      const cpuToFastify = rounds.map((r) => r.fastify.cpuUsPerRequest / r.me.cpuUsPerRequest)
      const headersToFastify = rounds.map((r) => r.headers.run.okPerSecond / r.fastify.run.okPerSecond)
      const non200 = sum(rounds.map(({ me: { run: r } }) => r.requests - (r.statuses['200'] ?? 0)))
      const meMedian = median(rounds.map((r) => r.me.run.okPerSecond))
      const detail = {
        connections: HTTP_CONNECTIONS,
        secondsPerRound: HTTP_DURATION,
        non200,
        ratioRoundsToFastify: toFastify,
        ratioRoundsToBareRoute: toBareRoute,
        cpuRatioRoundsToFastify: cpuToFastify,
        headersRatioRoundsToFastify: headersToFastify,
        rounds: rounds.map((r) => ({
          fastify: { ...short(r.fastify.run), cpuUsPerRequest: r.fastify.cpuUsPerRequest },
          headers: { ...short(r.headers.run), cpuUsPerRequest: r.headers.cpuUsPerRequest },
          me: { ...short(r.me.run), cpuUsPerRequest: r.me.cpuUsPerRequest },
          bare: { ...short(r.bare.run), cpuUsPerRequest: r.bare.cpuUsPerRequest },
        })),
      }
      figures.push({
        figure: '1 GET /users/me req/s vs bare Fastify',
        unit: 'req/s',
        measured: meMedian,
        baseline: median(rounds.map((r) => r.fastify.run.okPerSecond)),
        ratio: median(toFastify),
        target: '>= 0.80',
        pass: median(toFastify) >= 0.8 && non200 === 0,
        detail,
      })
      figures.push({
        figure: '1 ... vs bare route in the service',
        unit: 'req/s',
        measured: meMedian,
        baseline: median(rounds.map((r) => r.bare.run.okPerSecond)),
        ratio: median(toBareRoute),
        target: '(auth alone)',
        pass: non200 === 0,
        informational: true,
      })
      figures.push({
        figure: "1 bare Fastify + the service's headers",
        unit: 'req/s',
        measured: median(rounds.map((r) => r.headers.run.okPerSecond)),
        baseline: median(rounds.map((r) => r.fastify.run.okPerSecond)),
        ratio: median(headersToFastify),
        target: '(headers alone)',
        pass: true,
        informational: true,
      })
      figures.push({
        figure: '1 CPU µs/request: /users/me vs bare Fastify',
        unit: 'µs',
        measured: median(rounds.map((r) => r.me.cpuUsPerRequest)),
        baseline: median(rounds.map((r) => r.fastify.cpuUsPerRequest)),
        ratio: median(cpuToFastify),
        target: '(baseline/measured)',
        pass: true,
        informational: true,
      })
      figure1Note =
        `figure 1: medians of ${HTTP_ROUNDS} alternating rounds of ${HTTP_DURATION} s at ${HTTP_CONNECTIONS} connections; ` +
        `ratio per round to the bare Fastify ${toFastify.map((x) => x.toFixed(2)).join(', ')}, to the bare route ${toBareRoute.map((x) => x.toFixed(2)).join(', ')}, ` +
        `of CPU per request (bare Fastify's / /users/me's) ${cpuToFastify.map((x) => x.toFixed(2)).join(', ')}; `
    } finally {
      await fastify.close()
      await withHeaders.close()
    }
  }

  // ---- 8. Metrics on (scraped every second) vs off, CPU per request ---------
  if (want(8)) {
    log('figure 8: GET /users/me CPU per request, metrics on and scraped every second vs off (two more services)')
    const overhead = await measureMetricsOverhead({
      databaseUrl: database.url,
      // Its services share the database, so the signing keys sealed under this one's key.
      secretKey: service.config.secretKey!,
      connections: HTTP_CONNECTIONS,
      duration: HTTP_DURATION,
      rounds: 3,
      pairs: envInt('BENCH_METRICS_PAIRS', 4),
      setupRemoteAddress: SETUP_ADDRESS,
    })
    const non200 = sum(overhead.rounds.map((r) => r.on.non200 + r.off.non200))
    figures.push({
      figure: '8 CPU µs/request, metrics on vs off',
      unit: 'µs',
      measured: overhead.onCpuUsPerRequest,
      baseline: overhead.offCpuUsPerRequest,
      ratio: overhead.ratio,
      target: '<= 1.03',
      pass: overhead.ratio <= 1.03 && non200 === 0 && overhead.scrapeFailures === 0,
      detail: { connections: HTTP_CONNECTIONS, secondsPerRound: HTTP_DURATION, non200, ...overhead },
    })
  }

  // ---- 2. Refresh rotation vs raw SQL -------------------------------------
  if (want(2)) {
    log('figure 2: refresh rotation vs raw SQL')
    refresh = await runRefreshBench(service, database.url, {
      connections: REFRESH_CONNECTIONS,
      duration: DURATION,
      rounds: ROUNDS,
      poolMax: POOL_MAX,
      setupRemoteAddress: SETUP_ADDRESS,
      setupConcurrency: info.cores * 2,
      quiet: true,
    })
    figures.push({
      figure: '2 refresh rotation ops/s vs raw SQL tx',
      unit: 'ops/s',
      measured: refresh.totals.service.opsPerSecond,
      baseline: refresh.totals.baseline.opsPerSecond,
      ratio: refresh.totals.ratio,
      target: '>= 1.00',
      pass: refresh.totals.ratio >= 1 && refresh.sanity.revokedSessions === 0,
      detail: { connections: REFRESH_CONNECTIONS, poolMax: POOL_MAX, ...refresh },
    })
  }

  // ---- 7. Authorization-code exchanges vs refreshes ------------------------
  if (want(7)) {
    log('figure 7: authorization-code exchanges vs refreshes')
    const exchange = await measureCodeExchange(service, { connections: REFRESH_CONNECTIONS, duration: DURATION, rounds: ROUNDS, databaseUrl: database.url })
    figures.push({
      figure: '7 code exchanges/s vs refreshes/s',
      unit: 'ops/s',
      measured: exchange.exchangesPerSecond,
      baseline: exchange.refreshesPerSecond,
      ratio: exchange.ratio,
      target: '>= 0.80',
      pass: exchange.ratio >= 0.8,
      detail: { connections: REFRESH_CONNECTIONS, ...exchange },
    })
  }

  // ---- 3. Password login vs the bcrypt bound ------------------------------
  if (want(3)) {
    log('figure 3: password logins (authorization challenge endpoint) vs bcrypt bound')
    // Alternated: bound, logins, bound, logins, ..., bound; the baseline is the mean bound.
    const hashTimes: number[] = [await bcryptHashSeconds(BCRYPT_COST)]
    const loginRuns: LoadResult[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      // Enough connections to keep libuv's pool (4 threads) and every core busy.
      loginRuns.push(await runLoad({ ...login, connections: Math.max(8, info.cores * 4), duration: DURATION }))
      await drainBcrypt(service, users[1]!)
      hashTimes.push(await bcryptHashSeconds(BCRYPT_COST))
    }
    hashSeconds = mean(hashTimes)
    const boundMean = mean(hashTimes.map((t) => info.cores / t))
    const loginRate = rate(loginRuns)
    // Not the target's baseline: shows how far the machine's load keeps parallel bcrypt from the bound.
    const parallelRate = await bcryptParallelRate(BCRYPT_COST, info.cores, 4)
    parallelNote = `; ${info.cores} hashes in flight in this process achieve ${parallelRate.toFixed(1)}/s (logins/that = ${(loginRate / parallelRate).toFixed(2)})`
    figures.push({
      figure: '3 password logins/s (authorize-challenge) vs bcrypt bound',
      unit: 'logins/s',
      measured: loginRate,
      baseline: boundMean,
      ratio: loginRate / boundMean,
      target: '>= 0.85',
      pass: loginRate / boundMean >= 0.85,
      detail: {
        bcryptCost: BCRYPT_COST,
        hashMs: hashTimes.map((t) => t * 1000),
        parallelBcryptPerSecond: parallelRate,
        ratioToParallelBcrypt: loginRate / parallelRate,
        loginRounds: loginRuns.map(short),
      },
    })
  }

  // ---- 4. Authenticated p99 under a login flood at the rate limit ----------
  if (want(4)) {
    log('figure 4: authenticated p99, idle vs login flood at the rate limit')
    const floodRate = rateLimitPerMinute / 60
    const latencyRun = { ...me, connections: 10, overallRate: LATENCY_RATE, duration: DURATION }
    const idleRuns: LoadResult[] = []
    const floodRuns: { latency: LoadResult; flood: LoadResult; loopDelayMaxMs: number; loopDelayP99Ms: number }[] = []
    await runLoad({ ...latencyRun, duration: WARMUP })
    for (let round = 1; round <= ROUNDS; round++) {
      idleRuns.push(await runLoad(latencyRun))
      const floodDone = runLoad({
        ...login,
        // Each connection waits for one hash at a time; enough of them to send at floodRate.
        connections: Math.max(8, Math.ceil(floodRate * hashSeconds * 4)),
        overallRate: Math.max(1, Math.round(floodRate)),
        duration: DURATION + 2,
      })
      await new Promise((resolve) => setTimeout(resolve, 1000)) // the flood is running
      await service.loopDelay(true)
      const latency = await runLoad(latencyRun)
      const loop = await service.loopDelay(false)
      const flood = await floodDone
      // The next idle round must not inherit the flood's queued hashes.
      await drainBcrypt(service, users[1]!)
      floodRuns.push({ latency, flood, loopDelayMaxMs: loop.maxMs, loopDelayP99Ms: loop.p99Ms })
      floodLoopDelays.push(loop.maxMs)
    }
    const idleP99 = mean(idleRuns.map((r) => r.latencyMs.p99))
    const floodP99 = mean(floodRuns.map((r) => r.latency.latencyMs.p99))
    const latencyNon200 = sum([...idleRuns, ...floodRuns.map((r) => r.latency)].map((r) => r.requests - (r.statuses['200'] ?? 0)))
    figures.push({
      figure: '4 auth p99 ms under login flood vs idle',
      unit: 'ms',
      measured: floodP99,
      baseline: idleP99,
      ratio: floodP99 / idleP99,
      target: '<= 3.00',
      pass: floodP99 / idleP99 <= 3 && latencyNon200 === 0,
      detail: {
        authRate: LATENCY_RATE,
        floodRatePerSecond: floodRate,
        rateLimitPerMinute,
        latencyNon200,
        idleRounds: idleRuns.map(short),
        floodRounds: floodRuns.map((r) => ({
          latency: short(r.latency),
          flood: { statuses: r.flood.statuses, perSecond: r.flood.requests / r.flood.seconds, latencyMs: r.flood.latencyMs },
          eventLoopDelayMaxMs: r.loopDelayMaxMs,
          eventLoopDelayP99Ms: r.loopDelayP99Ms,
        })),
      },
    })
  }

  // ---- 5. Peak RSS ---------------------------------------------------------
  const end = await service.stats()
  const peak = end.maxRssBytes
  figures.push({
    figure: '5 peak RSS MB (service process)',
    unit: 'MB',
    measured: peak / MB,
    baseline: 200,
    ratio: peak / MB / 200,
    target: '<= 1.00',
    pass: peak / MB <= 200,
    detail: {
      scope: 'the peak resident set (getrusage ru_maxrss) of the service process, `node dist/src/server.js` as npm start runs it, from its start to the end of the bench; the load generators and the bench harness (setup, the raw-SQL baseline and its pg pool) are other processes',
      rssServiceStartedMb: started.rssBytes / MB,
      rssAtEndMb: end.rssBytes / MB,
      heapUsedMbAtEnd: end.heapUsedBytes / MB,
    },
  })

  // ---- 5, embedded: the same entry point on PGlite ---------------------------
  let embedded: EmbeddedMemory | undefined
  if (want(5)) {
    // Alone on the machine's memory and cores: the Postgres service is done.
    await service.close()
    log('figure 5, embedded: a fresh DATA_DIR, no DATABASE_URL')
    embedded = await measureEmbeddedMemory()
    const peakMb = embedded.maxRssBytes / MB
    figures.push({
      figure: '5 peak RSS MB (service, embedded PGlite)',
      unit: 'MB',
      measured: peakMb,
      baseline: EMBEDDED_RSS_TARGET_MB,
      ratio: peakMb / EMBEDDED_RSS_TARGET_MB,
      target: '<= 1.00',
      pass: peakMb <= EMBEDDED_RSS_TARGET_MB,
      detail: {
        scope: 'the peak resident set (getrusage ru_maxrss) of the service process on its embedded database, from its first start on an empty DATA_DIR through the workload; PGlite runs inside this process',
        workload: embedded.workload,
        rssServiceStartedMb: embedded.startedRssBytes / MB,
        rssAtEndMb: embedded.rssBytes / MB,
        heapUsedMbAtEnd: embedded.heapUsedBytes / MB,
      },
    })
  }

  // ---- 6. Storage: its own services and databases, after the others ---------
  let storage: StorageBenchResult | undefined
  if (want(6)) {
    if (!want(5)) await service.close()
    log('figure 6: storage that does not grow with use')
    storage = await runStorageBench({ ...storageBenchOptions(), quiet: true })
    const longest = storage.footprints[storage.footprints.length - 1]!
    const hundred = storage.footprints.find((f) => f.rotations === 100) ?? longest
    figures.push({
      figure: `6 session rows after ${longest.rotations} rotations`,
      unit: 'rows',
      measured: longest.sessionRows,
      baseline: storage.footprints[0]!.sessionRows,
      ratio: longest.sessionRows / storage.footprints[0]!.sessionRows,
      target: '<= 1.00',
      pass: storage.footprints.every((f) => f.sessionRows === 1) && longest.sessionRowBytes === hundred.sessionRowBytes,
      detail: { footprints: storage.footprints, note: 'row bytes grow with the retirement list up to 8 entries, then stay fixed' },
    })
    figures.push({
      figure: '6 refresh ops/s, 10M refreshes of history vs empty',
      unit: 'ops/s',
      measured: storage.history.withHistory.opsPerSecond,
      baseline: storage.history.empty.opsPerSecond,
      ratio: storage.history.ratio,
      target: '>= 0.90',
      pass: storage.history.ratio >= 0.9,
      detail: storage.history,
    })
    figures.push({
      figure: '6 CPU µs/answer: rate-limited guess vs forged refresh token',
      unit: 'µs',
      measured: storage.forgedFlood.rateLimitedCpuMicrosPerAnswer,
      baseline: storage.forgedFlood.forgedCpuMicrosPerAnswer,
      ratio: storage.forgedFlood.ratio,
      target: '>= 1.00',
      pass: storage.forgedFlood.ratio >= 1,
      detail: storage.forgedFlood,
    })
  }

  // ---- 9. Events (webhooks): services of its own on this database, after the others ----
  let events: EventsResult | undefined
  if (want(9)) {
    // Its services deliver to a loopback receiver; this one's worker (private networks refused) must not claim their deliveries.
    await service.close()
    log('figure 9: webhook delivery throughput, oldest pending event under load, logins with an event vs without')
    events = await measureEvents({
      ...eventsBenchOptions(),
      databaseUrl: database.url,
      // Its services share the database, so the signing keys sealed under this one's key.
      secretKey: service.config.secretKey!,
      bcryptCost: BCRYPT_COST,
      setupRemoteAddress: SETUP_ADDRESS,
      log,
    })
    figures.push(...eventsFigures(events))
  }

  console.log()
  if (storage) {
    printStorageResult(storage)
    console.log()
  }
  printTable(
    ['figure', 'measured', 'baseline', 'ratio', 'target', 'result'],
    figures.map((f) => [
      f.figure,
      f.measured.toFixed(f.unit === 'ms' || f.unit === 'µs' ? 2 : 0),
      f.baseline.toFixed(f.unit === 'ms' || f.unit === 'µs' ? 2 : 0),
      f.ratio.toFixed(2),
      f.target,
      f.pass ? (f.informational ? 'info' : 'pass') : 'FAIL',
    ])
  )
  const f4 = floodLoopDelays.map((ms) => `${ms.toFixed(1)} ms`).join(', ')
  console.log(
    `\n${info.cores} cores (${info.cpu}), Node ${info.node}, ${info.platform}; load average ${loadAverage()}\n` +
      figure1Note +
      (events ? `${eventsNote(events)}; ` : '') +
      `figure 2: sessions revoked by reuse detection ${refresh?.sanity.revokedSessions ?? '-'} (must be 0); ` +
      `figure 3: bcrypt cost ${BCRYPT_COST}, ${(hashSeconds * 1000).toFixed(0)} ms per hash (mean, alternating with the login rounds)${parallelNote}; ` +
      `figure 5: service RSS ${(started.rssBytes / MB).toFixed(0)} MB started and idle, ${(end.rssBytes / MB).toFixed(0)} MB at the end, ${(peak / MB).toFixed(0)} MB peak` +
      (embedded
        ? `; embedded ${(embedded.startedRssBytes / MB).toFixed(0)} MB started, ${(embedded.rssBytes / MB).toFixed(0)} MB after ${embedded.workload}, ${(embedded.maxRssBytes / MB).toFixed(0)} MB peak; `
        : '; ') +
      `figure 4: flood ${(rateLimitPerMinute / 60).toFixed(1)} logins/s (the limit, ${rateLimitPerMinute}/min), authenticated ${LATENCY_RATE} req/s, event-loop delay max during flood ${f4}`
  )
  const path = await writeResults('bench.json', {
    at: startedAt.toISOString(),
    machine: { ...info, loadAverage: loadAverage() },
    settings: {
      durationSeconds: DURATION,
      rounds: ROUNDS,
      bcryptCost: BCRYPT_COST,
      rateLimitPerMinute,
      poolMax: POOL_MAX,
      serviceNodeFlags: nodeFlags,
    },
    figures,
    pass: figures.every((f) => f.pass),
  })
  console.log(`results written to ${path}`)
} finally {
  await service?.close()
  await database.drop()
}

interface EmbeddedMemory {
  workload: string
  startedRssBytes: number
  maxRssBytes: number
  rssBytes: number
  heapUsedBytes: number
}

/**
 * `npm start` with no database configured: the service on PGlite in a fresh
 * DATA_DIR (its first start creates the database), then sign-ups, a login
 * per user, EMBEDDED_ROTATIONS refreshes of each session and GET /users/me
 * under load for BENCH_DURATION seconds.
 */
async function measureEmbeddedMemory (): Promise<EmbeddedMemory> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tokenauth-bench-'))
  // Its sign-ups and logins go 32 at once to fill the caches: past the bcrypt
  // queue's bound they would be shed (503), which is not what this figure measures.
  const embedded = await startService({ DATA_DIR: dataDir, BCRYPT_COST: String(BCRYPT_COST), PASSWORD_QUEUE_MAX_WAIT_MS: '0' })
  try {
    const started = await embedded.stats()
    const tag = randomBytes(4).toString('hex')
    const people = Array.from({ length: EMBEDDED_USERS }, (_, i) => ({ email: `embedded-${tag}-${i}@example.test`, password: `embedded password ${i} ${tag}` }))
    await Promise.all(people.map((u) => signup(embedded, u.email, u.password)))
    const sessions = await Promise.all(people.map((u) => tokens(embedded, { grant_type: 'password', username: u.email, password: u.password })))
    await Promise.all(
      sessions.map(async (session) => {
        let current = session
        for (let i = 0; i < EMBEDDED_ROTATIONS; i++) current = await tokens(embedded, { grant_type: 'refresh_token', refresh_token: current.refresh_token })
      })
    )
    const me = await runLoad({
      url: embedded.baseUrl,
      path: '/users/me',
      headers: { authorization: `Bearer ${sessions[0]!.access_token}` },
      connections: 10,
      duration: DURATION,
    })
    if ((me.statuses['200'] ?? 0) !== me.requests) throw new Error(`GET /users/me on the embedded database: ${JSON.stringify(me.statuses)}`)
    const end = await embedded.stats()
    return {
      workload:
        `${EMBEDDED_USERS} sign-ups, ${EMBEDDED_USERS} logins, ${EMBEDDED_USERS * EMBEDDED_ROTATIONS} refreshes, ` +
        `${me.requests} GET /users/me in ${DURATION} s`,
      startedRssBytes: started.rssBytes,
      maxRssBytes: end.maxRssBytes,
      rssBytes: end.rssBytes,
      heapUsedBytes: end.heapUsedBytes,
    }
  } finally {
    await embedded.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

async function tokens (service: RunningService, payload: Record<string, string>): Promise<{ access_token: string; refresh_token: string }> {
  const response = await service.inject({ method: 'POST', url: '/auth/token', payload, remoteAddress: SETUP_ADDRESS })
  if (response.statusCode !== 200) throw new Error(`${payload.grant_type} grant failed: ${response.statusCode} ${response.body}`)
  return JSON.parse(response.body) as { access_token: string; refresh_token: string }
}

function short (r: LoadResult) {
  return { perSecond: r.okPerSecond, requests: r.requests, statuses: r.statuses, seconds: r.seconds, latencyMs: r.latencyMs }
}

function loadAverage (): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')
}
