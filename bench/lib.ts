import { randomBytes } from 'node:crypto'
import { fork, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import pg from 'pg'
import { loadConfig, type Config } from '../src/config.js'

/** Shared by the benchmark scripts: a database, the service listening in its own process, figures. */

export const DEFAULT_ADMIN_URL = 'postgresql://root@127.0.0.1:5432/postgres'
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results')

export interface BenchDatabase {
  url: string
  /** true when this script created the database (and drops it at the end). */
  created: boolean
  drop(): Promise<void>
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * DATABASE_URL when set (used as is, never dropped); otherwise a fresh
 * database on the local Postgres (BENCH_ADMIN_URL names its maintenance
 * database), dropped at the end, also on Ctrl-C.
 */
export async function benchDatabase (prefix: string): Promise<BenchDatabase> {
  if (process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, created: false, drop: async () => {} }
  }
  const adminUrl = process.env.BENCH_ADMIN_URL ?? DEFAULT_ADMIN_URL
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${quote(name)}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  let dropped = false
  const drop = async () => {
    if (dropped) return
    dropped = true
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`)
    await client.end()
  }
  process.once('SIGINT', () => {
    drop().finally(() => process.exit(130))
  })
  return { url: url.toString(), created: true, drop }
}

export interface InjectRequest {
  method: 'GET' | 'POST'
  url: string
  payload?: unknown
  headers?: Record<string, string>
  remoteAddress?: string
}

export interface RunningService {
  /** The settings the service runs with (its environment, validated as server.ts validates it). */
  config: Config
  baseUrl: string
  pid: number
  /** `app.inject` inside the service process, for setup requests that must not spend the load generator's address budget. */
  inject(request: InjectRequest): Promise<{ statusCode: number; headers: Record<string, string>; body: string }>
  /** The service process's memory: peak resident set (getrusage), current RSS and heap. */
  stats(): Promise<{ maxRssBytes: number; rssBytes: number; heapUsedBytes: number }>
  /** Starts, then stops and reads, the service's own event-loop delay histogram. */
  loopDelay(on: true): Promise<Record<string, never>>
  loopDelay(on: false): Promise<{ maxMs: number; p99Ms: number }>
  /** CPU time (user + system) the service process has used, in microseconds. */
  cpuUsage(): Promise<number>
  /** V8's CPU profiler in the service process: on (sampling every `intervalUs`), then off, writing a .cpuprofile to `path`. */
  cpuProfile(on: true, intervalUs?: number): Promise<Record<string, never>>
  cpuProfile(on: false, path: string): Promise<{ path: string }>
  close(): Promise<void>
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SERVER_ENTRY = join(ROOT, 'dist', 'src', 'server.js')
const SERVICE_HOOKS = join(ROOT, 'bench', 'service-hooks.mjs')
const BARE_FASTIFY = join(ROOT, 'bench', 'bare-fastify.mjs')

/** The service's node flags: npm start's, then BENCH_SERVICE_NODE_ARGS (e.g. --cpu-prof). */
export function serviceNodeFlags (): string[] {
  return [...startScriptNodeFlags(), ...(process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean)]
}

/** The node flags of `npm start` (package.json), so that the bench runs the service exactly as it starts in production. */
function startScriptNodeFlags (): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const match = /^exec node((?:\s+--\S+)*)\s+dist\/src\/server\.js$/.exec(scripts.start)
  if (!match) throw new Error(`package.json scripts.start is not "exec node [--flags] dist/src/server.js": ${scripts.start}`)
  return match[1]!.split(/\s+/).filter(Boolean)
}

/**
 * The service as `npm start` runs it: `node [its flags] dist/src/server.js`
 * (the compiled build; `npm run bench` builds it first) in its own process, listening on a
 * free loopback port, so that its CPU and memory are its own. A preload
 * (bench/service-hooks.mjs) adds the bench-only bare route and answers setup
 * and measurement requests over IPC. BENCH_SERVICE_NODE_ARGS adds node flags
 * (e.g. --cpu-prof) to the service process.
 */
export async function startService (env: Record<string, string>): Promise<RunningService> {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run npm run build first`)
  const serviceEnv: Record<string, string> = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    SECRET_KEY: randomBytes(32).toString('base64url'),
    AUTH_RATE_LIMIT_PER_MINUTE: '0',
    // Setup only: the benches start their sessions with the password grant (one request each).
    // The logins figures 3 and 4 measure go through the authorization challenge endpoint.
    PASSWORD_GRANT: 'enabled',
    HOST: '127.0.0.1',
    PORT: '0',
    ...env,
  }
  const config = loadConfig(serviceEnv)
  // BENCH_SERVICE_LOG: the service's log (stdout) to that file, e.g. to measure request logging at LOG_LEVEL=info.
  const stdout = process.env.BENCH_SERVICE_LOG ? openSync(process.env.BENCH_SERVICE_LOG, 'a') : 'inherit'
  const { child, port, call, exited } = await forkListening(
    SERVER_ENTRY,
    [...serviceNodeFlags(), '--import', pathToFileURL(SERVICE_HOOKS).href],
    serviceEnv,
    stdout
  )
  if (typeof stdout === 'number') closeSync(stdout)
  return {
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    inject: (request) => call({ type: 'inject', request }),
    stats: () => call({ type: 'stats' }),
    loopDelay: ((on: boolean) => call({ type: 'loop-delay', on })) as RunningService['loopDelay'],
    cpuUsage: cpuUsage(call),
    cpuProfile: profileSwitch(call),
    close: () => stop(child, exited),
  }
}

/** Figure 1's headline baseline: a bare Fastify in its own process (bench/bare-fastify.mjs). */
export interface BareFastify {
  baseUrl: string
  pid: number
  cpuUsage: RunningService['cpuUsage']
  cpuProfile: RunningService['cpuProfile']
  close(): Promise<void>
}

/**
 * A bare `fastify()` with one route, `GET /users/me`, answering `body`, in a
 * process of its own started with the service's node flags (npm start's,
 * then BENCH_SERVICE_NODE_ARGS), as the service is: the same runtime, the
 * same collector settings, its own CPU. `headers`, when given, go on every
 * answer (a diagnostic: what response headers alone cost).
 */
export async function startBareFastify (body: string, headers?: Record<string, string>): Promise<BareFastify> {
  const { child, port, call, exited } = await forkListening(BARE_FASTIFY, serviceNodeFlags(), {
    NODE_ENV: 'production',
    BENCH_BARE_BODY: body,
    ...(headers ? { BENCH_BARE_HEADERS: JSON.stringify(headers) } : {}),
  })
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    cpuUsage: cpuUsage(call),
    cpuProfile: profileSwitch(call),
    close: () => stop(child, exited),
  }
}

/** The headers of the service's answer but those any Fastify sends (content type and length, date, connection, keep-alive). */
export function serviceResponseHeaders (headers: Record<string, string>): Record<string, string> {
  const own = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive'])
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !own.has(name)))
}

type Call = (message: Record<string, unknown>) => Promise<any>

function cpuUsage (call: Call): RunningService['cpuUsage'] {
  return async () => ((await call({ type: 'cpu-usage' })) as { cpuUs: number }).cpuUs
}

function profileSwitch (call: Call): RunningService['cpuProfile'] {
  return ((on: boolean, option?: number | string) =>
    on ? call({ type: 'cpu-profile', on, intervalUs: option }) : call({ type: 'cpu-profile', on, path: option })) as RunningService['cpuProfile']
}

async function stop (child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  await exited
}

/**
 * Forks `entry` with `execArgv` and only `env` (and PATH), and waits for its
 * {type: 'listening', port}; `call` sends a request over IPC and resolves with
 * the answer carrying its id.
 */
async function forkListening (entry: string, execArgv: string[], env: Record<string, string>, stdout: 'inherit' | number = 'inherit') {
  const child = fork(entry, [], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    execPath: process.execPath,
    // None of the bench's own loaders (tsx) reaches the child.
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  })
  let nextId = 0
  const pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>()
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  exited.then((code) => {
    for (const { reject } of pending.values()) reject(new Error(`${entry} exited with ${code}`))
    pending.clear()
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: { type?: string; port?: number; id?: number; error?: string }) => {
      if (message.type === 'listening') return resolve(message.port!)
      const waiter = message.id === undefined ? undefined : pending.get(message.id)
      if (!waiter) return
      pending.delete(message.id!)
      if (message.error) waiter.reject(new Error(message.error))
      else waiter.resolve(message)
    })
    exited.then((code) => reject(new Error(`${entry} exited with ${code} before listening`)))
  })
  const call: Call = (message) =>
    new Promise<any>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve, reject })
      child.send({ ...message, id })
    })
  return { child, port, call, exited }
}

export function machine () {
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  }
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  // Nearest-rank on a linear interpolation between neighbours.
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low)
}

export async function writeResults (file: string, data: unknown): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, file)
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`)
  return path
}

/** Prints rows as an aligned text table. */
export function printTable (header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map(String))]
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  console.log(line(cells[0]!))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const row of cells.slice(1)) console.log(line(row))
}

export const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`)
  return value
}

// ---------------------------------------------------------------------------
// A generic load run: autocannon in a child process, so that the load
// generator shares neither the server's event loop nor its memory (the RSS
// figure is the service's process). Bodies, when given, are used in turn.
// Latency is timed per request in the generator, in fractional milliseconds
// (autocannon's own histogram rounds to whole milliseconds).

/** A row of the bench's table: a figure, its baseline and target. */
export interface Figure {
  figure: string
  unit: string
  measured: number
  baseline: number
  ratio: number
  target: string
  pass: boolean
  /** Shown beside a headline figure, with no target of its own. */
  informational?: boolean
  detail?: Record<string, unknown>
}

export interface LoadOptions {
  url: string
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  /** Request bodies, used round robin. */
  bodies?: string[]
  connections: number
  /** Seconds. */
  duration: number
  /** Requests per second over all connections (open-ish loop); unset: as fast as possible. */
  overallRate?: number
}

export interface LoadResult {
  requests: number
  statuses: Record<string, number>
  /** Responses with this status per second. */
  okPerSecond: number
  errors: number
  seconds: number
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number }
}

export interface RawLoadResult {
  error: string | null
  statuses: Record<string, number>
  latencies: number[]
  ok: number
  retryable: number
  refused: number
  seconds: number
  errors: number
}

const LOAD_WORKER = join(dirname(fileURLToPath(import.meta.url)), 'load-worker.cjs')

/** Runs autocannon in a child process (bench/load-worker.cjs) with these options. */
export function runLoadProcess (options: Record<string, unknown>): Promise<RawLoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(LOAD_WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let answered = false
    child.once('message', (message: RawLoadResult) => {
      answered = true
      if (message.error) reject(new Error(message.error))
      else resolve(message)
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (!answered) reject(new Error(`load generator exited with ${code}`))
    })
    child.send(options)
  })
}

export async function runLoad (options: LoadOptions, okStatus = 200): Promise<LoadResult> {
  const message = await runLoadProcess({ ...options })
  const { latencies, statuses, seconds } = message
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0)
  return {
    requests,
    statuses,
    okPerSecond: (statuses[okStatus] ?? 0) / seconds,
    errors: message.errors,
    seconds,
    latencyMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY),
      mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    },
  }
}
