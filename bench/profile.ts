/**
 * `npx tsx bench/profile.ts`: where figure 1's time goes. Starts the service
 * (as `npm run bench` does, on a fresh Postgres database) and figure 1's bare
 * Fastify, then for each target drives `BENCH_DURATION` seconds of load at
 * `BENCH_HTTP_CONNECTIONS` connections with V8's CPU profiler on in the
 * process under load, writes the profile to bench/results/profile-<target>.cpuprofile
 * (open it in Chrome DevTools) and prints a summary: CPU per request, self
 * time by package and function, and the inclusive time of each global hook.
 *
 * Targets (BENCH_PROFILE_TARGETS, default all, in this order):
 *   fastify  GET /users/me of the bare Fastify in its own process
 *   headers  the same bare Fastify, its answers carrying the service's
 *            response headers (security headers, no-store, Vary, a request id)
 *   bare     GET /bench/bare of the service (every global hook, no auth)
 *   me       GET /users/me of the service with a valid access token
 *
 * BENCH_LOG_LEVEL sets the service's LOG_LEVEL (default warn, as the bench);
 * its log goes to BENCH_SERVICE_LOG (a file; default the terminal).
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { mkdirSync, readFileSync } from 'node:fs'
import {
  benchDatabase,
  envInt,
  machine,
  RESULTS_DIR,
  runLoad,
  serviceResponseHeaders,
  startBareFastify,
  startService,
  writeResults,
  type BareFastify,
} from './lib.js'
import { printSummary, summarise, type CpuProfile, type Probe } from './cpuprofile-summary.js'

const DURATION = envInt('BENCH_DURATION', 8)
const CONNECTIONS = envInt('BENCH_HTTP_CONNECTIONS', 32)
const INTERVAL_US = envInt('BENCH_PROFILE_INTERVAL_US', 250)
const TARGETS = (process.env.BENCH_PROFILE_TARGETS ?? 'fastify,headers,bare,me').split(',').map((x) => x.trim())
const SETUP_ADDRESS = '10.255.0.1'

/** The service's global hooks and the steps of GET /users/me, by function name and defining file. */
const PROBES: Probe[] = [
  { label: 'Node: HTTP parser to request event', functionName: 'parserOnIncoming', url: 'node:_http_server' },
  { label: 'Fastify: request set-up (routeHandler)', functionName: 'routeHandler', url: 'fastify/lib/route.js' },
  { label: 'request id (genReqId)', functionName: 'genReqId', url: 'dist/src/app.js' },
  { label: 'request child logger (pino child)', functionName: 'createChildLogger', url: 'fastify/lib/logger-factory.js' },
  { label: 'request logging: incoming request', functionName: 'incomingRequest', url: 'fastify/lib/log-controller.js' },
  { label: 'request logging: request completed', functionName: 'requestCompleted', url: 'fastify/lib/log-controller.js' },
  { label: 'onRequest: security headers', functionName: 'securityHeadersHook', url: 'dist/src/http/external/helmet.js' },
  { label: 'onRequest: under-pressure', functionName: 'onRequest', url: '@fastify/under-pressure' },
  { label: 'onRequest: CORS', functionName: 'handleCors', url: '@fastify/cors' },
  { label: 'onRequest: cookie parsing', functionName: 'fastifyCookieHandler', url: '@fastify/cookie' },
  { label: 'onSend: cookie writer', functionName: 'fastifyCookieOnSendHandler', url: '@fastify/cookie' },
  { label: 'onSend: response headers (app)', functionName: 'responseHeadersHook', url: 'dist/src/app.js' },
  { label: 'onSend: no-store (cache-control)', functionName: 'noStoreHook', url: 'dist/src/http/cache-control.js' },
  { label: 'Fastify: after onRequest (handleRequest)', functionName: 'handleRequest', url: 'fastify/lib/handle-request.js' },
  { label: 'preHandler: authorize', functionName: 'authorize', url: 'dist/src/http/authentication.js' },
  { label: 'handler: GET /users/me', functionName: 'currentUser', url: 'dist/src/features/accounts/user-routes.js' },
  { label: 'response serialization', functionName: 'serialize', url: 'fastify/lib/reply.js' },
  { label: 'Fastify: writing the response (onSendEnd)', functionName: 'onSendEnd', url: 'fastify/lib/reply.js' },
  { label: 'Fastify: response finished (onResponse, logging)', functionName: 'onResFinished', url: 'fastify/lib/reply.js' },
  { label: 'garbage collection', functionName: '(garbage collector)', url: '' },
]

const info = machine()
const database = await benchDatabase('tokenauth_profile')
const service = await startService({
  DATABASE_URL: database.url,
  BCRYPT_COST: '4',
  ...(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {}),
})
let bare: BareFastify | undefined
let withHeaders: BareFastify | undefined
try {
  const email = `profile-${randomBytes(4).toString('hex')}@example.test`
  const password = `profile password ${randomBytes(8).toString('hex')}`
  const signup = await service.inject({ method: 'POST', url: '/auth/signup', payload: { email, password }, remoteAddress: SETUP_ADDRESS })
  if (signup.statusCode !== 201) throw new Error(`signup: ${signup.statusCode} ${signup.body}`)
  const login = await service.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: email, password }, remoteAddress: SETUP_ADDRESS })
  const token = (JSON.parse(login.body) as { access_token: string }).access_token
  const headers = { authorization: `Bearer ${token}` }
  const me = await service.inject({ method: 'GET', url: '/users/me', headers })
  if (me.statusCode !== 200) throw new Error(`GET /users/me: ${me.statusCode} ${me.body}`)
  bare = await startBareFastify(me.body)
  withHeaders = await startBareFastify(me.body, serviceResponseHeaders(me.headers))

  const targets = {
    fastify: { process: bare, url: bare.baseUrl, path: '/users/me', headers },
    headers: { process: withHeaders, url: withHeaders.baseUrl, path: '/users/me', headers },
    bare: { process: service, url: service.baseUrl, path: '/bench/bare', headers: {} },
    me: { process: service, url: service.baseUrl, path: '/users/me', headers },
  } as const
  console.log(`${info.cores} cores (${info.cpu}), Node ${info.node}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${DURATION} s at ${CONNECTIONS} connections, sampling every ${INTERVAL_US} µs`)
  const results: Record<string, unknown> = {}
  mkdirSync(RESULTS_DIR, { recursive: true })
  for (const name of TARGETS) {
    const target = targets[name as keyof typeof targets]
    if (!target) throw new Error(`unknown target ${name} (fastify, bare, me)`)
    const load = { url: target.url, path: target.path, headers: target.headers, connections: CONNECTIONS }
    await runLoad({ ...load, duration: 3 })
    await target.process.cpuProfile(true, INTERVAL_US)
    const run = await runLoad({ ...load, duration: DURATION })
    const file = join(RESULTS_DIR, `profile-${name}.cpuprofile`)
    await target.process.cpuProfile(false, file)
    if (run.requests !== (run.statuses['200'] ?? 0)) throw new Error(`${name}: statuses ${JSON.stringify(run.statuses)}`)
    const summary = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, PROBES)
    printSummary(`${name} (${target.path}): ${(run.requests / run.seconds).toFixed(0)} req/s, profile ${file}`, summary, run.requests)
    results[name] = {
      perSecond: run.requests / run.seconds,
      requests: run.requests,
      cpuUsPerRequest: summary.busyUs / run.requests,
      probesUsPerRequest: Object.fromEntries(summary.probes.map((p) => [p.label, p.us / run.requests])),
    }
  }
  await writeResults('profile.json', { at: new Date().toISOString(), machine: { ...info, loadAverage: loadavg() }, duration: DURATION, connections: CONNECTIONS, results })
} finally {
  await bare?.close()
  await withHeaders?.close()
  await service.close()
  await database.drop()
}
