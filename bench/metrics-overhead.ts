/**
 * Figure 8: what metrics cost an authenticated request. Two services of
 * the same build on one database, one with METRICS_PORT set and scraped
 * every second (as Prometheus would, a little more often than its usual
 * 15 s), one without; figure 1's workload (GET /users/me with a valid access
 * token) on each in alternating rounds, and each process's CPU time (user +
 * system) per request. The figure is the median over rounds of the ratio
 * metrics-on / metrics-off, target <= 1.03: counting happens on logins,
 * refreshes and rate-limit answers, never on an authenticated request, so
 * what remains is prom-client's process monitors (event-loop delay, GC) and
 * the scrapes themselves.
 *
 *   npx tsx bench/metrics-overhead.ts
 *
 * Environment: DATABASE_URL (default: a fresh database, dropped afterwards),
 * BENCH_HTTP_CONNECTIONS (32), BENCH_HTTP_DURATION seconds per round (5),
 * BENCH_HTTP_ROUNDS (3) per pair of processes, BENCH_METRICS_PAIRS (4).
 */
import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { benchDatabase, envInt, machine, percentile, printTable, runLoad, startService, writeResults, type LoadResult, type RunningService } from './lib.js'

export interface MetricsOverheadOptions {
  databaseUrl: string
  /** The SECRET_KEY of any service already on that database (its signing keys are sealed under it); default a new one. */
  secretKey?: string
  connections: number
  /** Seconds per round. */
  duration: number
  rounds: number
  /** Pairs of fresh service processes, each measured `rounds` times (default 1). */
  pairs?: number
  /** Setup requests come from here, not to spend the load generator's budgets. */
  setupRemoteAddress?: string
}

interface Side {
  cpuUsPerRequest: number
  perSecond: number
  requests: number
  non200: number
}

export interface MetricsOverheadResult {
  /** Median of the per-round ratios of CPU per request, metrics on / off. */
  ratio: number
  onCpuUsPerRequest: number
  offCpuUsPerRequest: number
  scrapes: number
  scrapeFailures: number
  /** Size of one scrape's text, bytes. */
  scrapeBytes: number
  rounds: { on: Side; off: Side; ratio: number }[]
}

/** A loopback port free at the moment of asking. */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** An access token of a new user of `service`. */
async function accessToken (service: RunningService, remoteAddress: string): Promise<string> {
  const email = `metrics-${randomBytes(6).toString('hex')}@bench.test`
  const password = `bench passphrase ${randomBytes(4).toString('hex')}`
  const signup = await service.inject({ method: 'POST', url: '/auth/signup', payload: { email, password }, remoteAddress })
  if (signup.statusCode !== 201) throw new Error(`signup: ${signup.statusCode} ${signup.body}`)
  const login = await service.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password }, remoteAddress })
  if (login.statusCode !== 200) throw new Error(`login: ${login.statusCode} ${login.body}`)
  return (JSON.parse(login.body) as { access_token: string }).access_token
}

/**
 * Each pair of services is measured `rounds` times and closed; a new pair
 * follows. Two processes differ by more than 3% from one start to the next
 * (heap layout, what V8 optimised first), so one pair alone would measure
 * its processes, not the metrics: the median is taken over every round of
 * every pair.
 */
export async function measureMetricsOverhead (options: MetricsOverheadOptions): Promise<MetricsOverheadResult> {
  const results: MetricsOverheadResult[] = []
  // One SECRET_KEY for every pair: the database's signing keys are sealed under the first one's.
  const secretKey = options.secretKey ?? randomBytes(32).toString('base64url')
  for (let pair = 0; pair < (options.pairs ?? 1); pair++) results.push(await measurePair({ ...options, secretKey }))
  const rounds = results.flatMap((r) => r.rounds)
  return {
    ratio: percentile(rounds.map((r) => r.ratio), 50),
    onCpuUsPerRequest: percentile(rounds.map((r) => r.on.cpuUsPerRequest), 50),
    offCpuUsPerRequest: percentile(rounds.map((r) => r.off.cpuUsPerRequest), 50),
    scrapes: results.reduce((n, r) => n + r.scrapes, 0),
    scrapeFailures: results.reduce((n, r) => n + r.scrapeFailures, 0),
    scrapeBytes: results.at(-1)!.scrapeBytes,
    rounds,
  }
}

async function measurePair (options: MetricsOverheadOptions): Promise<MetricsOverheadResult> {
  const remoteAddress = options.setupRemoteAddress ?? '10.8.0.1'
  const secretKey = options.secretKey ?? randomBytes(32).toString('base64url')
  const metricsPort = await freePort()
  const common = { DATABASE_URL: options.databaseUrl, SECRET_KEY: secretKey, BCRYPT_COST: '4' }
  const on = await startService({ ...common, METRICS_PORT: String(metricsPort), METRICS_HOST: '127.0.0.1' })
  let off: RunningService | undefined
  let scraper: ReturnType<typeof setInterval> | undefined
  try {
    off = await startService(common)
    const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`
    let scrapes = 0
    let scrapeFailures = 0
    let scrapeBytes = 0
    const scrape = async () => {
      try {
        const response = await fetch(metricsUrl)
        const text = await response.text()
        if (response.status === 200 && text.includes('auth_logins_total')) {
          scrapes++
          scrapeBytes = text.length
        } else {
          scrapeFailures++
        }
      } catch {
        scrapeFailures++
      }
    }
    await scrape()
    if (scrapes !== 1) throw new Error(`GET ${metricsUrl} failed`)
    scraper = setInterval(() => {
      void scrape()
    }, 1000)

    const sides = { on, off }
    const loads = {
      on: { url: on.baseUrl, path: '/users/me', headers: { authorization: `Bearer ${await accessToken(on, remoteAddress)}` }, connections: options.connections },
      off: { url: off.baseUrl, path: '/users/me', headers: { authorization: `Bearer ${await accessToken(off, remoteAddress)}` }, connections: options.connections },
    }
    for (const name of ['on', 'off'] as const) await runLoad({ ...loads[name], duration: 3 })
    const measure = async (name: 'on' | 'off'): Promise<Side> => {
      const before = await sides[name].cpuUsage()
      const run: LoadResult = await runLoad({ ...loads[name], duration: options.duration })
      const cpu = (await sides[name].cpuUsage()) - before
      return { cpuUsPerRequest: cpu / run.requests, perSecond: run.okPerSecond, requests: run.requests, non200: run.requests - (run.statuses['200'] ?? 0) }
    }
    const rounds: MetricsOverheadResult['rounds'] = []
    for (let round = 0; round < options.rounds; round++) {
      // Which side goes first alternates too, so a drift in the machine's load within a round hits both alike.
      const first = round % 2 === 0 ? 'off' : 'on'
      const a = await measure(first)
      const b = await measure(first === 'off' ? 'on' : 'off')
      const [offSide, onSide] = first === 'off' ? [a, b] : [b, a]
      rounds.push({ on: onSide, off: offSide, ratio: onSide.cpuUsPerRequest / offSide.cpuUsPerRequest })
    }
    return {
      ratio: percentile(rounds.map((r) => r.ratio), 50),
      onCpuUsPerRequest: percentile(rounds.map((r) => r.on.cpuUsPerRequest), 50),
      offCpuUsPerRequest: percentile(rounds.map((r) => r.off.cpuUsPerRequest), 50),
      scrapes,
      scrapeFailures,
      scrapeBytes,
      rounds,
    }
  } finally {
    if (scraper) clearInterval(scraper)
    await off?.close()
    await on.close()
  }
}

export function printMetricsOverhead (result: MetricsOverheadResult): void {
  printTable(
    ['round', 'on µs/req', 'off µs/req', 'on/off', 'on req/s', 'off req/s'],
    result.rounds.map((r, i) => [i + 1, r.on.cpuUsPerRequest.toFixed(1), r.off.cpuUsPerRequest.toFixed(1), r.ratio.toFixed(3), r.on.perSecond.toFixed(0), r.off.perSecond.toFixed(0)])
  )
  console.log(
    `CPU per GET /users/me, metrics on (scraped every second) / off: median ${result.ratio.toFixed(3)} (target <= 1.03); ` +
      `${result.scrapes} scrapes of ${result.scrapeBytes} bytes, ${result.scrapeFailures} failed`
  )
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const database = await benchDatabase('bench_metrics')
  try {
    const result = await measureMetricsOverhead({
      databaseUrl: database.url,
      connections: envInt('BENCH_HTTP_CONNECTIONS', 32),
      duration: envInt('BENCH_HTTP_DURATION', 5),
      rounds: envInt('BENCH_HTTP_ROUNDS', 3),
      pairs: envInt('BENCH_METRICS_PAIRS', 4),
    })
    printMetricsOverhead(result)
    console.log(JSON.stringify(machine()))
    await writeResults('metrics-overhead.json', { machine: machine(), ...result })
  } finally {
    await database.drop()
  }
}
