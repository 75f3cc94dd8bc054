import dns from 'node:dns'
import { createServer, type Server } from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import { isIP, type AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import fp from 'fastify-plugin'
import type { Test } from 'tap'
import { Webhook } from 'standardwebhooks'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { json, TEST_ENV } from '../helpers/app.js'
import { realPostgresUrl } from '../helpers/database.js'
import * as users from '../helpers/users.js'
import { WebhookReceiver, type ReceivedMessage } from '../helpers/webhook-receiver.js'
import type { AttackCase } from './catalogue.js'
import { serializeRevocationSync, type AttackContext, type Response } from './context.js'

/**
 * Webhooks (DESIGN §3.18) under attack: server-side request forgery through
 * the URL an admin registers (every form of test/security/SSRF-ROWS.md,
 * driven through POST and PATCH /admin/webhooks, then DNS rebinding, stored
 * internal addresses and redirects at delivery), captured messages replayed
 * or altered at a receiver verifying with the `standardwebhooks` package,
 * events forged with another secret, the signing secret kept out of every
 * answer, list, log and body but the two that hand it over, and the admin
 * API closed to everyone else.
 *
 * The context's service refuses private networks (its default). Rows that
 * need a receiver on loopback share a second instance on the context's
 * database with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true and a clock of its own
 * (the context's has been moved by earlier rows, and webhook-timestamp is
 * read from it), closed with the context. Every instance on a database delivers every endpoint's
 * messages, so while a row runs the context's worker is held and each row
 * runs the batches it means, on the instance it means. Host names of the
 * `.wh-catalogue.test` zone are answered by a stub of the system resolver
 * (registration's dns.promises.lookup and the delivery agent's dns.lookup),
 * so that names resolving to forbidden addresses, and a name rebinding
 * between registration and delivery, are driven end to end without a DNS
 * server.
 */

type App = FastifyInstance

const OWASP_SSRF = 'OWASP SSRF Prevention Cheat Sheet'
const STANDARD_WEBHOOKS = 'Standard Webhooks 1.0'
/** A public address (example.com's), accepted at registration; no row's worker ever sends to it. */
const PUBLIC_V4 = '93.184.215.14'
const PUBLIC_URL = `https://${PUBLIC_V4}/hooks`
/** The stubbed zone (stubResolver). */
const ZONE = 'wh-catalogue.test'
/** Standard Webhooks' timestamp tolerance, as the standardwebhooks package applies it. */
const TOLERANCE_SECONDS = 5 * 60

// ------------------------------------------------------------------ the world of a row

interface Lab {
  app: App
  clock: LabClock
  /** Every log line of the instance (level trace) since the row began. */
  logs: string[]
}

/** The lab's clock: real time plus an offset a row may move forward; each row starts it at real time again. */
class LabClock {
  private offsetMs = 0
  now = (): number => Date.now() + this.offsetMs
  advance (seconds: number): void {
    this.offsetMs += seconds * 1000
  }

  reset (): void {
    this.offsetMs = 0
  }
}

interface World {
  /** An admin of the context's service, signed in just now. */
  admin: () => Promise<string>
  /** Runs one batch of the context's worker (guarded: WEBHOOK_ALLOW_PRIVATE_NETWORKS unset). */
  guardedBatch: () => Promise<number>
  /** The second instance (sharedLab), its clock at real time and its log emptied for the row. */
  lab: () => Promise<Lab>
  receiver: () => Promise<WebhookReceiver>
  target: () => Promise<Target>
  /** Answers names of ZONE as `answer` says; every name looked up is recorded in `lookups`. */
  stubResolver: (answer: (hostname: string, call: number) => string[] | NodeJS.ErrnoException) => { lookups: string[] }
}

/**
 * Sets up a row: holds the context's worker for the row's length, and
 * undoes everything at its end (the resolver, the receivers and internal
 * services, and every webhook endpoint, deliveries with them).
 */
function world (ctx: AttackContext, t: Test): World {
  const worker = ctx.app.webhookDelivery
  const realRunBatch = worker.runBatch
  worker.runBatch = async () => 0
  const closers: (() => Promise<void>)[] = []
  let admin: Promise<string> | undefined
  t.teardown(async () => {
    for (const close of closers.reverse()) await close()
    await ctx.app.db.webhookEndpoint.deleteMany({})
    Reflect.deleteProperty(worker, 'runBatch')
  })
  return {
    admin: () => (admin ??= ctx.signup('wh-admin').then((account) => ctx.makeAdmin(account)).then((tokens) => tokens.access_token)),
    guardedBatch: async () => {
      await worker.idle()
      const handled = await realRunBatch.call(worker)
      await worker.idle()
      return handled
    },
    async lab () {
      const lab = await sharedLab(ctx)
      lab.clock.reset()
      lab.logs.length = 0
      return lab
    },
    async receiver () {
      const receiver = await WebhookReceiver.start()
      closers.push(() => receiver.close())
      return receiver
    },
    async target () {
      const target = await startTarget()
      closers.push(() => target.close())
      return target
    },
    stubResolver (answer) {
      const stub = installResolverStub(answer)
      closers.push(async () => stub.restore())
      return stub
    },
  }
}

const labs = new WeakMap<AttackContext, Promise<Lab>>()

/**
 * The second instance the rows share (building one takes seconds): on the
 * context's database, private networks allowed, batches only when a row runs
 * them, every log line (level trace) captured. It is closed with the context.
 */
function sharedLab (ctx: AttackContext): Promise<Lab> {
  let lab = labs.get(ctx)
  if (lab === undefined) {
    const built = labApp(ctx)
    lab = built
    labs.set(ctx, built)
    const closeContext = ctx.close.bind(ctx)
    ctx.close = async () => {
      await built.then((l) => l.app.close(), () => {})
      return closeContext()
    }
  }
  return lab
}

async function labApp (ctx: AttackContext): Promise<Lab> {
  const config = loadConfig({
    ...TEST_ENV,
    DATABASE_URL: ctx.database.url,
    DATABASE_POOL_MAX: String(ctx.database.poolMax),
    ...ctx.env,
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    // Batches run when a row runs them, never on a timer.
    WEBHOOK_POLL_INTERVAL_MS: '600000',
    LOG_LEVEL: 'trace',
  })
  const logs: string[] = []
  const options = serverOptions(config)
  const server = Fastify({ ...options, logger: { ...(options.logger as object), level: 'trace', stream: { write: (line: string) => { logs.push(line) } } } })
  const clock = new LabClock()
  await server.register(fp(app), { config, now: clock.now })
  await server.ready()
  serializeRevocationSync(server)
  return { app: server, clock, logs }
}

/** A loopback HTTP server standing for an internal service: counts the connections and requests it gets, answers 200. */
interface Target {
  port: number
  url: (path?: string) => string
  connections: number
  requests: number
  close: () => Promise<void>
}

async function startTarget (): Promise<Target> {
  const server: Server = createServer((request, response) => {
    target.requests++
    request.resume()
    request.on('end', () => response.writeHead(200).end('internal'))
  })
  server.on('connection', () => target.connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const target: Target = {
    port,
    url: (path = '/internal') => `http://127.0.0.1:${port}${path}`,
    connections: 0,
    requests: 0,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return target
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void

/**
 * Replaces the system resolver for names of ZONE: dns.promises.lookup (what
 * registration resolves with) and dns.lookup (what the delivery agent's
 * connections resolve with; syncBuiltinESMExports makes the ES module's
 * binding follow). Other names go to the real resolver.
 */
function installResolverStub (answer: (hostname: string, call: number) => string[] | NodeJS.ErrnoException) {
  const promises = dns.promises
  const realPromiseLookup = promises.lookup
  const realLookup = dns.lookup
  const lookups: string[] = []
  const inZone = (hostname: string) => hostname === ZONE || hostname.endsWith(`.${ZONE}`)
  const resolve = (hostname: string, family: number): dns.LookupAddress[] | NodeJS.ErrnoException => {
    const calls = lookups.filter((name) => name === hostname).length
    lookups.push(hostname)
    const answered = answer(hostname, calls)
    if (!Array.isArray(answered)) return answered
    return answered.map((address) => ({ address, family: isIP(address.split('%')[0]!) })).filter((a) => family === 0 || a.family === family)
  }
  const familyOf = (options: unknown): number => {
    const family = typeof options === 'object' && options !== null ? (options as { family?: unknown }).family : options
    return family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0
  }
  const wantsAll = (options: unknown) => typeof options === 'object' && options !== null && (options as { all?: unknown }).all === true

  promises.lookup = (async (hostname: string, options?: unknown) => {
    if (!inZone(hostname)) return (realPromiseLookup as (h: string, o?: unknown) => Promise<unknown>)(hostname, options)
    const result = resolve(hostname, familyOf(options))
    if (!Array.isArray(result)) throw result
    if (wantsAll(options)) return result
    if (result.length === 0) throw notFound(hostname)
    return result[0]
  }) as typeof promises.lookup
  dns.lookup = ((hostname: string, options: unknown, callback?: LookupCallback) => {
    const done = (typeof options === 'function' ? options : callback) as LookupCallback
    const opts = typeof options === 'function' ? {} : options
    if (!inZone(hostname)) return (realLookup as (h: string, o: unknown, c: LookupCallback) => void)(hostname, opts, done)
    const result = resolve(hostname, familyOf(opts))
    process.nextTick(() => {
      if (!Array.isArray(result)) done(result, '')
      else if (result.length === 0) done(notFound(hostname), '')
      else if (wantsAll(opts)) done(null, result)
      else done(null, result[0]!.address, result[0]!.family)
    })
  }) as typeof dns.lookup
  syncBuiltinESMExports()
  return {
    lookups,
    restore () {
      promises.lookup = realPromiseLookup
      dns.lookup = realLookup
      syncBuiltinESMExports()
    },
  }
}

function dnsError (code: string, hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), { code, hostname })
}

const notFound = (hostname: string) => dnsError('ENOTFOUND', hostname)

// ------------------------------------------------------------------ the admin API

interface Registered {
  id: string
  secret: string
  url: string
}

function adminCall (target: App, token: string | undefined, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return target.inject({
    method,
    url,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    ...(payload === undefined ? {} : { payload }),
  })
}

async function register (target: App, token: string, url: string, events: string[] = ['user_signed_up']): Promise<Registered> {
  const response = await adminCall(target, token, 'POST', '/admin/webhooks', { url, events })
  if (response.statusCode !== 201) throw new Error(`registering ${url}: ${response.statusCode} ${response.body}`)
  return { ...json<{ id: string; secret: string }>(response), url }
}

/**
 * Each URL refused through the admin API, at registration and as a change
 * of `control`'s URL: 400 webhook_url_refused, and nothing stored (no new
 * endpoint, the control's URL unchanged, no audit event of either).
 */
async function assertUrlsRefused (ctx: AttackContext, t: Test, token: string, control: Registered, urls: string[], reason?: RegExp) {
  const endpoints = await ctx.app.db.webhookEndpoint.count()
  const audited = await ctx.app.db.auditEvent.count({ where: { type: { in: ['webhook_created', 'webhook_updated'] } } })
  for (const url of urls) {
    const created = await adminCall(ctx.app, token, 'POST', '/admin/webhooks', { url, events: ['user_signed_up'] })
    assertRefusal(t, created, `POST ${url}`, reason)
    const changed = await adminCall(ctx.app, token, 'PATCH', `/admin/webhooks/${control.id}`, { url })
    assertRefusal(t, changed, `PATCH ${url}`, reason)
  }
  t.equal(await ctx.app.db.webhookEndpoint.count(), endpoints, `none of the ${urls.length} URLs was stored`)
  t.equal((await ctx.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: control.id } })).url, control.url, "the control endpoint's URL is unchanged")
  t.equal(await ctx.app.db.auditEvent.count({ where: { type: { in: ['webhook_created', 'webhook_updated'] } } }), audited, 'nothing was audited as created or changed')
}

function assertRefusal (t: Test, response: Response, label: string, reason?: RegExp) {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 160)})`)
  const body = json<{ code?: string; message?: string }>(response)
  t.equal(body.code, 'webhook_url_refused', `${label}: webhook_url_refused`)
  if (reason) t.match(body.message, reason, `${label}: ${body.message}`)
}

/** The registration the SSRF rows start from: an admin of the context's service and an endpoint at a public address, whose URL the PATCHes try to change. */
async function ssrfSetup (ctx: AttackContext, t: Test) {
  const w = world(ctx, t)
  const token = await w.admin()
  const control = await register(ctx.app, token, PUBLIC_URL, ['webhook_replayed'])
  return { w, token, control }
}

// ------------------------------------------------------------------ receivers

/** The Standard Webhooks headers of a message as received. */
function headersOf (message: Pick<ReceivedMessage, 'id' | 'timestamp' | 'signature'>): Record<string, string> {
  return { 'webhook-id': message.id, 'webhook-timestamp': message.timestamp, 'webhook-signature': message.signature }
}

/**
 * What a standardwebhooks receiver under `secret` makes of `message` when
 * its clock reads `atMs`: null when it verifies, the package's error
 * otherwise. Date.now is replaced only for the synchronous call.
 */
function verifyAt (secret: string, message: Pick<ReceivedMessage, 'id' | 'timestamp' | 'signature' | 'body'>, atMs: number): string | null {
  const realNow = Date.now
  Date.now = () => atMs
  try {
    new Webhook(secret).verify(message.body, headersOf(message))
    return null
  } catch (error) {
    return (error as Error).message
  } finally {
    Date.now = realNow
  }
}

/** A receiver on loopback and an endpoint of `lab` delivering to it (subscribed to `events`), registered by a new admin of `lab`. */
async function labEndpoint (w: World, lab: Lab, events: string[] = ['user_signed_up'], token?: string) {
  const receiver = await w.receiver()
  const adminToken = token ?? (await users.signupAdmin(lab.app, { label: 'wh-lab-admin' })).access_token
  const hook = await register(lab.app, adminToken, receiver.url, events)
  receiver.secrets.push(hook.secret)
  return { receiver, hook, adminToken }
}

/** A lab endpoint, and the message of one sign-up delivered to it. */
async function deliveredMessage (w: World, lab: Lab) {
  const endpoint = await labEndpoint(w, lab)
  await signupEvent(lab.app)
  await deliver(lab.app)
  const [message] = await endpoint.receiver.waitForAccepted(1)
  return { ...endpoint, message }
}

/** One batch of `target`'s worker, its outcomes written. */
async function deliver (target: App): Promise<number> {
  return target.webhookDelivery.deliverOnce()
}

/** An event of type user_signed_up, through `target`'s API. */
async function signupEvent (target: App): Promise<string> {
  return (await users.signup(target, { label: 'wh-event' })).id
}

const bodyOf = (message: ReceivedMessage) => JSON.parse(message.body) as { type: string; timestamp: string; data: Record<string, unknown> }

/** The forms a secret could leak in: as issued, its base64 body, and its key bytes in hex and base64url. */
function secretForms (secret: string): string[] {
  const body = secret.slice('whsec_'.length)
  const raw = Buffer.from(body, 'base64')
  return [secret, body, raw.toString('hex'), raw.toString('base64url'), JSON.stringify(secret).slice(1, -1)]
}

function leaked (haystack: string, secrets: string[]): string[] {
  const lower = haystack.toLowerCase()
  return secrets.flatMap((secret) => secretForms(secret).filter((form) => (/^[0-9a-f]+$/.test(form) ? lower.includes(form) : haystack.includes(form))).map((form) => form.slice(0, 12)))
}

// ------------------------------------------------------------------ the rows

export const webhookCases: AttackCase[] = [
  // --------------------------------------------------------------- SSRF at registration (SSRF-ROWS.md)
  {
    id: 'WH-01',
    title: 'SSRF: loopback and the unspecified address, in every IPv4 spelling WHATWG URL reads as 127.0.0.1, are refused at POST and PATCH /admin/webhooks, nothing stored',
    source: `${OWASP_SSRF}; WHATWG URL §3.5 (IPv4 parser); RFC 6890; RFC 4291 §2.5.3; SSRF-ROWS WH-SSRF-01..03`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'http://127.0.0.1/', 'http://[::1]/', 'https://127.0.0.1:8443/hooks',
        'http://2130706433/', 'http://017700000001/', 'http://0177.0.0.1/', 'http://0x7f.1/', 'http://0x7f000001/', 'http://127.1/',
        'http://%31%32%37.0.0.1/', 'http://１２７．０．０．１/', 'http://127.0.0.1./',
        'http://0/', 'http://0.0.0.0/', 'http://[::]/',
      ], /non-public address \((loopback|unspecified)\)/)
    },
  },
  {
    id: 'WH-02',
    title: 'SSRF: private, carrier-grade NAT, link-local, unique-local and site-local addresses are refused at POST and PATCH, nothing stored',
    source: `${OWASP_SSRF}; RFC 1918; RFC 6598; RFC 3927; RFC 4193; RFC 3879; RFC 4291 §2.5.6; SSRF-ROWS WH-SSRF-04..06`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'http://10.0.0.1/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://192.168.0.1:8080/', 'http://100.64.0.1/',
        'http://169.254.0.1/', 'http://[fe80::1]/', 'http://[fc00::1]/', 'http://[fd12:3456:789a::1]/', 'http://[fec0::1]/',
      ], /non-public address/)
      await assertUrlsRefused(ctx, t, token, control, ['http://[fe80::1%25eth0]/'], /not valid/)
    },
  },
  {
    id: 'WH-03',
    title: 'SSRF: cloud metadata endpoints (AWS IPv4 and IPv6, ECS credentials, GCP, Azure, Azure WireServer, Alibaba), by address, other spellings and name, are refused',
    source: `${OWASP_SSRF}; AWS EC2 IMDS and ECS task metadata v2; GCP metadata server; Azure IMDS and 168.63.129.16; Alibaba Cloud ECS metadata; SSRF-ROWS WH-SSRF-07`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'http://[fd00:ec2::254]/latest/api/token', 'http://169.254.170.2/v2/credentials',
        'http://100.100.100.200/latest/meta-data/', 'http://168.63.129.16/machine?comp=goalstate', 'http://169.254.169.254/metadata/instance?api-version=2021-02-01',
        'http://2852039166/', 'http://0xA9FEA9FE/', 'http://0251.0376.0251.0376/', 'http://[::ffff:169.254.169.254]/',
      ], /non-public address \((cloud metadata|link-local)\)/)
      await assertUrlsRefused(ctx, t, token, control, ['http://metadata.google.internal/computeMetadata/v1/', 'http://metadata/computeMetadata/v1/'], /local name|fully qualified/)
    },
  },
  {
    id: 'WH-04',
    title: 'SSRF: IPv4 inside IPv6 (mapped, compatible, translated) and transition prefixes (NAT64, 6to4, Teredo) reaching an internal address are refused; the public ones are not',
    source: `${OWASP_SSRF}; RFC 4291 §2.5.5; RFC 6145; RFC 6052; RFC 8215; RFC 3056; RFC 4380; SSRF-ROWS WH-SSRF-08, 09`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'http://[::ffff:127.0.0.1]/', 'http://[::ffff:7f00:1]/', 'http://[0:0:0:0:0:ffff:7f00:1]/', 'http://[::127.0.0.1]/', 'http://[::ffff:0:7f00:1]/',
        'http://[::ffff:10.0.0.1]/', 'http://[64:ff9b::7f00:1]/', 'http://[64:ff9b::a9fe:a9fe]/', 'http://[64:ff9b:1::5db8:d70e]/',
        'http://[2002:7f00:1::]/', 'http://[2002:a9fe:a9fe::1]/', 'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
      ], /non-public address/)
      // Control: NAT64 and 6to4 of a public IPv4 address are deliverable (IPv6-only hosts behind DNS64).
      for (const url of ['http://[64:ff9b::5db8:d70e]/hooks', 'http://[2002:5db8:d70e::1]/hooks']) {
        const accepted = await adminCall(ctx.app, token, 'POST', '/admin/webhooks', { url, events: ['webhook_replayed'] })
        t.equal(accepted.statusCode, 201, `${url}: accepted (${accepted.body.slice(0, 120)})`)
      }
    },
  },
  {
    id: 'WH-05',
    title: 'SSRF: multicast, broadcast, reserved, documentation and benchmarking ranges, and IPv6 outside 2000::/3, are refused',
    source: `${OWASP_SSRF}; RFC 6890; RFC 5737; RFC 2544; RFC 3849; RFC 9637; SSRF-ROWS WH-SSRF-10`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'http://224.0.0.1/', 'http://239.255.255.250:1900/', 'http://255.255.255.255/', 'http://240.0.0.1/', 'http://192.0.2.1/', 'http://198.51.100.1/',
        'http://203.0.113.1/', 'http://198.18.0.1/', 'http://[ff02::1]/', 'http://[2001:db8::1]/', 'http://[3fff::1]/', 'http://[4000::1]/', 'http://[100::1]/',
      ], /non-public address/)
    },
  },
  {
    id: 'WH-06',
    title: 'SSRF: local names (localhost and its subdomains, .local, .internal, .localdomain, home.arpa) and single labels are refused without a DNS lookup',
    source: `${OWASP_SSRF}; RFC 6761 §6.3; RFC 6762; RFC 8375; SSRF-ROWS WH-SSRF-11`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      // Every lookup registration makes, of any name: a local name must not reach the resolver at all.
      const realPromiseLookup = dns.promises.lookup
      const looked: string[] = []
      dns.promises.lookup = ((hostname: string, options?: unknown) => {
        looked.push(hostname)
        return (realPromiseLookup as (h: string, o?: unknown) => Promise<unknown>)(hostname, options)
      }) as typeof dns.promises.lookup
      try {
        await assertUrlsRefused(ctx, t, token, control, [
          'http://localhost/', 'http://localhost./', 'http://LOCALHOST:8080/', 'http://api.localhost/', 'http://printer.local/', 'http://hooks.internal/',
          'http://localhost.localdomain/', 'http://nas.home.arpa/', 'http://intranet/', 'http://intranet./',
          'http://ｌｏｃａｌｈｏｓｔ/', 'http://localhost%2e/', 'http://metadata.google.internal./',
        ], /local name|fully qualified/)
      } finally {
        dns.promises.lookup = realPromiseLookup
      }
      t.same(looked, [], 'no name was looked up')
      // More than one trailing dot gets past the name rule (it strips one) to the resolver, which refuses such names; any answer would be judged by address.
      await assertUrlsRefused(ctx, t, token, control, ['http://localhost../', 'http://printer.local../', 'http://intranet../'])
    },
  },
  {
    id: 'WH-07',
    title: 'SSRF: a public-looking name whose A or AAAA records include a forbidden address (loopback, metadata, link-local with a zone, NAT64 of metadata), even beside a public one, is refused',
    source: `${OWASP_SSRF} (validate every resolved address); SSRF-ROWS WH-SSRF-12, 13`,
    async run (ctx, t) {
      const { w, token, control } = await ssrfSetup(ctx, t)
      const records: Record<string, string[]> = {
        [`127.0.0.1.nip.${ZONE}`]: ['127.0.0.1'],
        [`v6-loopback.${ZONE}`]: ['::1'],
        [`aws.${ZONE}`]: ['169.254.169.254'],
        [`aws-v6.${ZONE}`]: ['fd00:ec2::254'],
        [`nat64-metadata.${ZONE}`]: ['64:ff9b::a9fe:a9fe'],
        [`scoped.${ZONE}`]: ['fe80::1%eth0'],
        [`mixed.${ZONE}`]: [PUBLIC_V4, '10.0.0.5'],
        [`mixed-v6.${ZONE}`]: ['2606:4700:4700::1111', 'fd00::5'],
        [`public.${ZONE}`]: [PUBLIC_V4, '2606:4700:4700::1111'],
      }
      const stub = w.stubResolver((hostname) => records[hostname] ?? notFound(hostname))
      await assertUrlsRefused(ctx, t, token, control, Object.keys(records).filter((name) => !name.startsWith('public.')).map((name) => `https://${name}/hooks`), /resolves to a non-public address/)
      const accepted = await adminCall(ctx.app, token, 'POST', '/admin/webhooks', { url: `https://public.${ZONE}/hooks`, events: ['webhook_replayed'] })
      t.equal(accepted.statusCode, 201, 'control: a name with only public records is accepted')
      t.ok(Object.keys(records).every((name) => stub.lookups.includes(name)), 'every name was resolved, and judged on its records')
    },
  },
  {
    id: 'WH-08',
    title: 'SSRF: schemes other than http and https (file, gopher, ftp, ws, javascript, data) and URLs with a user name or password are refused; the refusal echoes nothing of the URL',
    source: `${OWASP_SSRF}; RFC 3986 §3.2.1, §7.5; SSRF-ROWS WH-SSRF-17, 18`,
    async run (ctx, t) {
      const { token, control } = await ssrfSetup(ctx, t)
      await assertUrlsRefused(ctx, t, token, control, [
        'file:///etc/passwd', 'gopher://127.0.0.1:25/_HELO%20evil', `ftp://${PUBLIC_V4}/`, `ws://${PUBLIC_V4}/hooks`, `wss://${PUBLIC_V4}/hooks`, 'javascript:alert(1)', 'data:text/plain,hello',
      ], /https or http/)
      const credentials = ['https://s3cr3tUser:hunter2pw@93.184.215.14/hooks', 'http://hooks.example.com:hunter2pw@127.0.0.1/', 'https://s3cr3tUser@93.184.215.14/']
      await assertUrlsRefused(ctx, t, token, control, credentials, /must not contain a user name or password/)
      for (const url of credentials) {
        const answer = await adminCall(ctx.app, token, 'POST', '/admin/webhooks', { url, events: ['user_signed_up'] })
        t.notMatch(answer.body, /s3cr3tUser|hunter2pw|hooks\.example\.com/, `${url}: the answer repeats none of it`)
      }
    },
  },
  {
    id: 'WH-09',
    title: 'SSRF: a name that does not resolve (NXDOMAIN, no records, a resolver failure) is refused, never stored to be resolved later',
    source: `${OWASP_SSRF}; DESIGN §3.18; SSRF-ROWS WH-SSRF-19`,
    async run (ctx, t) {
      const { w, token, control } = await ssrfSetup(ctx, t)
      w.stubResolver((hostname) => (hostname.startsWith('nxdomain.') ? notFound(hostname) : hostname.startsWith('empty.') ? [] : dnsError('EAI_AGAIN', hostname)))
      await assertUrlsRefused(ctx, t, token, control, [`https://nxdomain.${ZONE}/hooks`, `https://empty.${ZONE}/hooks`], /does not resolve/)
      await assertUrlsRefused(ctx, t, token, control, [`https://flaky.${ZONE}/hooks`], /could not be resolved/)
    },
  },
  // --------------------------------------------------------------- SSRF at delivery
  {
    id: 'WH-10',
    title: 'SSRF by DNS rebinding: a name public at registration and 127.0.0.1 at delivery is refused at connect time; the loopback service sees no connection',
    source: `${OWASP_SSRF} (DNS rebinding: check the address actually connected to); SSRF-ROWS WH-SSRF-14; test/features/webhooks/destinations.test.ts`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const target = await w.target()
      const name = `rebind.${ZONE}`
      // The attacker's name server: a public address to the first question, the internal service's after.
      const stub = w.stubResolver((_hostname, call) => (call === 0 ? [PUBLIC_V4] : ['127.0.0.1']))
      const hook = await register(ctx.app, await w.admin(), `http://${name}:${target.port}/internal`)
      t.same(stub.lookups, [name], 'registration resolved the name once, to a public address')
      await ctx.signup('wh-rebind')
      t.ok(await w.guardedBatch() >= 1, 'the guarded worker attempted the delivery')
      t.ok(stub.lookups.length >= 2, 'the delivery resolved the name again, at connect time')
      t.equal(target.connections, 0, 'the loopback service saw no connection')
      const [delivery] = await ctx.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
      t.equal(delivery?.deliveredAt, null, 'not delivered')
      t.equal(delivery?.attempts, 1, 'a failed attempt')
      t.match(delivery?.lastError, /ForbiddenDestinationError.*non-public address \(loopback\)/, `recorded: ${delivery?.lastError}`)

      // Control: the same delivery through an instance allowing private networks reaches the service, so the stub did rebind.
      const lab = await w.lab()
      await ctx.app.db.$executeRaw`UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE endpoint_id = ${hook.id}::uuid`
      await deliver(lab.app)
      t.equal(target.requests, 1, 'control: unguarded, the rebound name reaches the loopback service')
    },
  },
  {
    id: 'WH-11',
    title: 'SSRF at delivery: endpoints stored while WEBHOOK_ALLOW_PRIVATE_NETWORKS was on (loopback literals, mapped IPv6, localhost) are refused at every delivery once it is off, before any connection',
    source: `${OWASP_SSRF}; DESIGN §3.18 ("at registration and at every delivery"); SSRF-ROWS WH-SSRF-15, 20`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const target = await w.target()
      const lab = await w.lab()
      const token = (await users.signupAdmin(lab.app, { label: 'wh-private-admin' })).access_token
      const urls = [target.url('/a'), `http://[::ffff:127.0.0.1]:${target.port}/b`, `https://127.0.0.1:${target.port}/c`, `http://localhost:${target.port}/d`]
      const hooks = []
      for (const url of urls) hooks.push(await register(lab.app, token, url))
      // The scheme and credential rules hold even with private networks allowed (WH-SSRF-20).
      for (const url of ['file:///etc/passwd', `http://user:pw@127.0.0.1:${target.port}/`]) {
        assertRefusal(t, await adminCall(lab.app, token, 'POST', '/admin/webhooks', { url, events: ['user_signed_up'] }), `allowed networks, still refused: ${url}`)
      }
      await signupEvent(lab.app)
      await deliver(lab.app)
      t.ok(target.requests >= 1, `control: with private networks allowed the service is reached (${target.requests} requests, ${target.connections} connections)`)
      const before = { connections: target.connections, requests: target.requests }

      // The setting is turned off (the context's instance): the next event's deliveries.
      await ctx.signup('wh-private')
      await w.guardedBatch()
      t.same({ connections: target.connections, requests: target.requests }, before, 'no new connection to the internal service')
      for (const hook of hooks) {
        const latest = await ctx.app.db.webhookDelivery.findFirstOrThrow({ where: { endpointId: hook.id }, orderBy: { createdAt: 'desc' }, include: { attemptsLog: { orderBy: { id: 'desc' } } } })
        t.equal(latest.deliveredAt, null, `${hook.url}: not delivered`)
        // The attempt's own record (last_error may since say the endpoint was disabled: the context's clock is days past the lab's first failure).
        const refusal = latest.attemptsLog[0]?.error
        t.match(refusal, /ForbiddenDestinationError: The URL's host is (a non-public address \(loopback\)|a local name)/, `${hook.url}: ${refusal}`)
      }
    },
  },
  {
    id: 'WH-12',
    title: 'SSRF through a redirect: a receiver answering 301, 302, 303, 307 or 308 to an internal address is not followed; each is a failed attempt and the internal service sees nothing',
    source: `${OWASP_SSRF} ("disable the following of redirections"); DESIGN §3.18 (a 3xx is a failed attempt); SSRF-ROWS WH-SSRF-16`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const internal = await w.target()
      const lab = await w.lab()
      const { receiver, hook } = await labEndpoint(w, lab)
      const statuses = [301, 302, 303, 307, 308]
      let answered = 0
      receiver.answer = () => ({ status: statuses[answered++ % statuses.length]!, headers: { location: internal.url('/latest/meta-data/') } })
      for (let i = 0; i < statuses.length; i++) await signupEvent(lab.app)
      await deliver(lab.app)
      t.equal(receiver.received.length, statuses.length, `${statuses.length} attempts reached the receiver`)
      t.equal(internal.connections, 0, 'the redirect target saw no connection')
      const rows = await lab.app.db.webhookDelivery.findMany({ where: { endpointId: hook.id } })
      t.same(rows.map((row) => row.lastStatus).sort(), statuses, 'each attempt recorded with its 3xx')
      t.ok(rows.every((row) => row.deliveredAt === null && /redirects are not followed/.test(row.lastError ?? '')), 'each a failed attempt: redirects are not followed')
    },
  },
  // --------------------------------------------------------------- replay
  {
    id: 'WH-13',
    title: 'a captured message replayed to a standardwebhooks receiver after the 5-minute timestamp tolerance is refused; within it, the same webhook-id lets the receiver drop it as a duplicate',
    source: `${STANDARD_WEBHOOKS} (signature scheme; timestamp tolerance and replay prevention; webhook-id as the idempotency key)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { receiver, hook, message } = await deliveredMessage(w, lab)
      t.ok(message!.verified, 'the genuine message verifies at the receiver')
      const sentAt = Number(message!.timestamp) * 1000
      t.equal(verifyAt(hook.secret, message!, sentAt + TOLERANCE_SECONDS * 1000), null, 'replayed at the edge of the tolerance: still verifies')
      t.equal(verifyAt(hook.secret, message!, sentAt + (TOLERANCE_SECONDS + 1) * 1000), 'Message timestamp too old', 'replayed a second past the tolerance: refused')
      t.equal(verifyAt(hook.secret, message!, sentAt + 24 * 3600 * 1000), 'Message timestamp too old', 'replayed a day later: refused')

      // Replayed at once, over HTTP: it verifies, and carries the webhook-id the receiver already processed.
      const replay = await fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headersOf(message!) }, body: message!.body })
      t.equal(replay.status, 200)
      const [first, second] = receiver.received
      t.ok(second?.verified, 'a replay inside the tolerance verifies (the signature alone cannot tell it)')
      t.equal(second?.id, first?.id, 'and carries the same webhook-id: deduplicating on it drops the replay')
    },
  },
  {
    id: 'WH-14',
    title: 'a captured message with its webhook-timestamp moved (to now, or by a second) or its webhook-id changed no longer verifies: the timestamp and id are signed',
    source: `${STANDARD_WEBHOOKS} (the signed content is id.timestamp.body)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { hook, message } = await deliveredMessage(w, lab)
      const sent = Number(message!.timestamp)
      const now = Math.floor(Date.now() / 1000)
      for (const timestamp of [now + 120, sent + 1, sent - 1, sent + TOLERANCE_SECONDS * 2]) {
        t.equal(verifyAt(hook.secret, { ...message!, timestamp: String(timestamp) }, timestamp * 1000), 'No matching signature found', `webhook-timestamp ${timestamp - sent >= 0 ? '+' : ''}${timestamp - sent} s: refused`)
      }
      t.equal(verifyAt(hook.secret, { ...message!, id: `${message!.id}1` }, sent * 1000), 'No matching signature found', 'another webhook-id: refused')
      t.equal(verifyAt(hook.secret, { ...message!, id: 'evt_1' }, sent * 1000), 'No matching signature found', 'the id of an older event: refused')
    },
  },
  {
    id: 'WH-15',
    title: 'a retry 10 minutes after a failed attempt carries the same webhook-id and body with a fresh timestamp and signature, so the tolerance never refuses a legitimate retry',
    source: `${STANDARD_WEBHOOKS} (timestamp tolerance; webhook-id stable across retries); DESIGN §3.18 (signature computed anew for each attempt)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { receiver, hook } = await labEndpoint(w, lab)
      receiver.answer = () => (receiver.received.length === 0 ? 503 : 200)
      await signupEvent(lab.app)
      await deliver(lab.app)
      t.equal(receiver.received.length, 1, 'a first attempt, answered 503')
      lab.clock.advance(600)
      await deliver(lab.app)
      t.equal(receiver.received.length, 2, 'a retry 10 minutes later')
      const [first, retry] = receiver.received as [ReceivedMessage, ReceivedMessage]
      t.equal(retry.id, first.id, 'the same webhook-id')
      t.equal(retry.body, first.body, 'the same body')
      t.ok(Number(retry.timestamp) - Number(first.timestamp) >= 600, `a timestamp of its own (+${Number(retry.timestamp) - Number(first.timestamp)} s)`)
      t.not(retry.signature, first.signature, 'a signature made anew')
      const receivedAt = lab.clock.now()
      t.equal(verifyAt(hook.secret, retry, receivedAt), null, 'the retry verifies at a receiver whose clock agrees with the sender')
      t.equal(verifyAt(hook.secret, first, receivedAt), 'Message timestamp too old', 'had it kept the first timestamp, the receiver would have refused it')
      const row = await lab.app.db.webhookDelivery.findFirstOrThrow({ where: { endpointId: hook.id } })
      t.ok(row.deliveredAt, 'delivered at the retry')
    },
  },
  // --------------------------------------------------------------- forgery
  {
    id: 'WH-16',
    title: 'a message body altered in transit (a field, the type, whitespace, key order, an escape) no longer verifies',
    source: `${STANDARD_WEBHOOKS} (HMAC-SHA256 over the raw body); RFC 8417 §4.1 (integrity of event tokens)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { hook, message } = await deliveredMessage(w, lab)
      const at = Number(message!.timestamp) * 1000
      t.equal(verifyAt(hook.secret, message!, at), null, 'control: the genuine message verifies')
      const body = bodyOf(message!)
      const altered: Record<string, string> = {
        'another user id': JSON.stringify({ ...body, data: { ...body.data, userId: '00000000-0000-4000-8000-000000000000' } }),
        'another type': JSON.stringify({ ...body, type: 'user_role_changed' }),
        'a trailing newline': `${message!.body}\n`,
        'keys reordered': JSON.stringify({ data: body.data, timestamp: body.timestamp, type: body.type }),
        'an equivalent escape': message!.body.replace('"type"', '"\\u0074ype"'),
        'an empty body': '',
      }
      for (const [label, text] of Object.entries(altered)) {
        t.not(text, message!.body, `${label}: differs`)
        t.equal(verifyAt(hook.secret, { ...message!, body: text }, at), 'No matching signature found', `${label}: refused`)
      }
    },
  },
  {
    id: 'WH-17',
    title: "a message signed with another endpoint's secret, or an attacker's, does not verify at this endpoint, even for the same event, id and timestamp",
    source: `${STANDARD_WEBHOOKS} (a secret per endpoint); RFC 8417 §4.1 (the recipient verifies the issuer)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const mine = await labEndpoint(w, lab)
      const other = await labEndpoint(w, lab, ['user_signed_up'], mine.adminToken)
      t.not(mine.hook.secret, other.hook.secret, 'each endpoint has its own secret')
      await signupEvent(lab.app)
      await deliver(lab.app)
      const [ours] = await mine.receiver.waitForAccepted(1)
      const [theirs] = await other.receiver.waitForAccepted(1)
      t.equal(theirs!.id, ours!.id, 'the same event: the same webhook-id')
      t.equal(theirs!.body, ours!.body, 'and the same body')
      const at = Number(theirs!.timestamp) * 1000
      t.equal(verifyAt(mine.hook.secret, theirs!, at), 'No matching signature found', "the other endpoint's message is refused here")
      const forged = (secret: string) => ({ ...ours!, signature: new Webhook(secret).sign(ours!.id, new Date(Number(ours!.timestamp) * 1000), ours!.body) })
      t.equal(verifyAt(mine.hook.secret, forged(other.hook.secret), at), 'No matching signature found', "signed anew with the other endpoint's secret: refused")
      t.equal(verifyAt(mine.hook.secret, forged(`whsec_${Buffer.alloc(32, 7).toString('base64')}`), at), 'No matching signature found', "signed with an attacker's secret: refused")
      t.equal(verifyAt(mine.hook.secret, { ...ours!, signature: `${theirs!.signature}` }, at), 'No matching signature found', "the other endpoint's signature on our message: refused")
    },
  },
  {
    id: 'WH-18',
    title: 'a rotated-out secret signs beside the new one for the overlap (24 h) only: after it, messages carry one signature, which the old secret does not verify',
    source: `${STANDARD_WEBHOOKS} (secret rotation: several signatures in webhook-signature); DESIGN §3.18`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { receiver, hook, adminToken } = await labEndpoint(w, lab)
      const rotated = await adminCall(lab.app, adminToken, 'POST', `/admin/webhooks/${hook.id}/secret`)
      t.equal(rotated.statusCode, 200, 'rotated')
      const secret = json<{ secret: string }>(rotated).secret
      t.not(secret, hook.secret, 'a new secret')
      await signupEvent(lab.app)
      await deliver(lab.app)
      const [during] = await receiver.waitForAccepted(1)
      const duringAt = Number(during!.timestamp) * 1000
      t.equal(during!.signature.split(' ').length, 2, 'inside the overlap: two signatures')
      t.equal(verifyAt(secret, during!, duringAt), null, 'verifies under the new secret')
      t.equal(verifyAt(hook.secret, during!, duringAt), null, 'and under the old one')

      lab.clock.advance(24 * 3600 + 1)
      await lab.app.revocations.sync()
      await signupEvent(lab.app)
      await deliver(lab.app)
      const after = receiver.received.at(-1)!
      t.not(after.id, during!.id, 'a later event')
      const afterAt = Number(after.timestamp) * 1000
      t.equal(after.signature.split(' ').length, 1, 'after the overlap: one signature')
      t.equal(verifyAt(secret, after, afterAt), null, 'verifies under the new secret')
      t.equal(verifyAt(hook.secret, after, afterAt), 'No matching signature found', 'the rotated-out secret no longer verifies')
      const forged = { ...after, signature: new Webhook(hook.secret).sign(after.id, new Date(afterAt), after.body) }
      t.equal(verifyAt(secret, forged, afterAt), 'No matching signature found', 'a message forged with the old secret fails at a receiver that switched')
      const row = await lab.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
      t.ok(row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() <= lab.clock.now(), 'the previous secret is past its expiry')
    },
  },
  {
    id: 'WH-19',
    title: 'the signing secret appears only in the answers creating and rotating it (no-store): never in reads, changes, the deliveries list, retries, replays, the audit log, delivered bodies or the logs',
    source: `${STANDARD_WEBHOOKS} (the secret is shared between sender and receiver only); RFC 8417 §4.1, §4.3 (events carry sensitive information); ASVS 5.0 V14.2 (sensitive data not exposed); CWE-532`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { receiver, hook, adminToken } = await labEndpoint(w, lab, ['*'])
      const secrets = [hook.secret]
      const answers: [string, Response][] = []
      const call = async (label: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) => {
        const response = await adminCall(lab.app, adminToken, method, url, payload)
        answers.push([label, response])
        return response
      }
      const rotated = await call('rotation', 'POST', `/admin/webhooks/${hook.id}/secret`)
      secrets.push(json<{ secret: string }>(rotated).secret)
      t.equal(rotated.headers['cache-control'], 'no-store', 'the rotation answer is not stored')
      const creation = await adminCall(lab.app, adminToken, 'POST', '/admin/webhooks', { url: receiver.url, events: ['webhook_replayed'] })
      t.equal(creation.headers['cache-control'], 'no-store', 'the creation answer is not stored')
      secrets.push(json<{ secret: string }>(creation).secret)
      const second = json<{ id: string }>(creation).id

      receiver.answer = () => (receiver.received.length % 2 === 0 ? 500 : 200)
      await signupEvent(lab.app)
      await deliver(lab.app)
      await deliver(lab.app)
      await call('list', 'GET', '/admin/webhooks')
      await call('read', 'GET', `/admin/webhooks/${hook.id}`)
      await call('change', 'PATCH', `/admin/webhooks/${hook.id}`, { description: 'renamed', events: ['*'] })
      await call('disable', 'PATCH', `/admin/webhooks/${second}`, { enabled: false })
      const deliveries = await call('deliveries', 'GET', `/admin/webhooks/${hook.id}/deliveries`)
      const delivery = json<{ items: { id: string }[] }>(deliveries).items[0]
      t.ok(delivery, 'the deliveries list has items')
      await call('retry', 'POST', `/admin/webhooks/${hook.id}/deliveries/${delivery!.id}/retry`)
      await call('replay', 'POST', `/admin/webhooks/${hook.id}/replay`, { since: new Date(lab.clock.now() - 3600_000).toISOString(), until: new Date(lab.clock.now() + 60_000).toISOString() })
      await call('audit', 'GET', '/admin/audit-events?limit=100')
      await call('refused', 'POST', '/admin/webhooks', { url: 'http://user:pw@127.0.0.1/', events: ['*'] })
      await lab.app.webhookDelivery.idle()
      await deliver(lab.app)
      await call('deliveries again', 'GET', `/admin/webhooks/${hook.id}/deliveries?limit=100`)
      await call('delete', 'DELETE', `/admin/webhooks/${second}`)

      for (const [label, response] of answers.filter(([label]) => label !== 'rotation')) {
        t.ok(response.statusCode < 500, `${label}: ${response.statusCode}`)
        t.same(leaked(response.body, secrets), [], `${label}: no secret in the answer`)
        t.notOk('secret' in (response.body.startsWith('{') ? json(response) : {}), `${label}: no secret field`)
      }
      const audited = json<{ items: { type: string }[] }>(answers.find(([label]) => label === 'audit')![1]).items
      t.ok(audited.some((event) => event.type === 'webhook_secret_rotated'), 'the audit log has the rotation (without the secret)')
      t.ok(receiver.received.length >= 3, `${receiver.received.length} messages delivered, webhook events among them`)
      t.ok(receiver.received.some((message) => bodyOf(message).type === 'webhook_secret_rotated'), 'the rotation itself was delivered as an event')
      t.same(leaked(receiver.received.map((m) => `${m.body} ${JSON.stringify(m.headers)}`).join('\n'), secrets), [], 'no secret in any delivered message')
      const stored = await lab.app.db.$queryRaw<{ row: string }[]>`
        SELECT row_to_json(d)::text AS row FROM webhook_deliveries d
        UNION ALL SELECT row_to_json(a)::text FROM webhook_attempts a
        UNION ALL SELECT row_to_json(e)::text FROM audit_events e WHERE e.type LIKE 'webhook%'`
      t.same(leaked(stored.map((r) => r.row).join('\n'), secrets), [], 'none in the deliveries, attempts or audit rows')
      t.ok(lab.logs.length > 20 && lab.logs.some((line) => line.includes('/admin/webhooks')), `${lab.logs.length} log lines at trace, the webhook routes among them`)
      t.same(leaked(lab.logs.join('\n'), secrets), [], 'no secret in the logs')
      t.ok(leaked(`x ${secrets[0]!.slice(6)} y`, secrets).length > 0, 'control: the search finds a planted secret body')
    },
  },
  // --------------------------------------------------------------- who may use the admin API
  {
    id: 'WH-20',
    title: "the webhook admin API is for admins' access tokens only: a user's token, a user's or an admin's API key and no credentials are refused on every route, and change nothing",
    source: 'ASVS 5.0 V8.2.1 (function-level authorisation); DESIGN §3.8, §3.18; CWE-285',
    async run (ctx, t) {
      world(ctx, t)
      const user = await ctx.signup('wh-user')
      const userKey = await users.createApiKey(ctx.app, user.access_token, { name: 'wh', scopes: ['profile'] })
      const adminTokens = await ctx.makeAdmin(await ctx.signup('wh-key-admin'))
      const adminKey = await users.createApiKey(ctx.app, adminTokens.access_token, { name: 'wh', scopes: ['introspect'] })
      const hook = await register(ctx.app, adminTokens.access_token, PUBLIC_URL)
      await ctx.signup('wh-admin-only')
      const delivery = await ctx.app.db.webhookDelivery.findFirstOrThrow({ where: { endpointId: hook.id } })
      const before = await ctx.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
      const deliveries = await ctx.app.db.webhookDelivery.count({ where: { endpointId: hook.id } })
      const routes: ['GET' | 'POST' | 'PATCH' | 'DELETE', string, Record<string, unknown>?][] = [
        ['POST', '/admin/webhooks', { url: 'https://hooks.attacker.example/', events: ['*'] }],
        ['GET', '/admin/webhooks'],
        ['GET', `/admin/webhooks/${hook.id}`],
        ['PATCH', `/admin/webhooks/${hook.id}`, { url: `https://${PUBLIC_V4}/attacker` }],
        ['POST', `/admin/webhooks/${hook.id}/secret`],
        ['GET', `/admin/webhooks/${hook.id}/deliveries`],
        ['POST', `/admin/webhooks/${hook.id}/deliveries/${delivery.id}/retry`],
        ['POST', `/admin/webhooks/${hook.id}/replay`, { since: '2026-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z' }],
        ['DELETE', `/admin/webhooks/${hook.id}`],
      ]
      const callers: [string, Record<string, string>, number[]][] = [
        ["a user's access token", { authorization: `Bearer ${user.access_token}` }, [403]],
        ["a user's API key (Bearer)", { authorization: `Bearer ${userKey.key}` }, [401, 403]],
        ["a user's API key (X-API-Key)", { 'x-api-key': userKey.key }, [401, 403]],
        ["an admin's introspect API key", { authorization: `Bearer ${adminKey.key}` }, [401, 403]],
        ['no credentials', {}, [401]],
      ]
      for (const [who, headers, expected] of callers) {
        for (const [method, url, payload] of routes) {
          const response = await ctx.app.inject({ method, url, headers, ...(payload ? { payload } : {}) })
          t.ok(expected.includes(response.statusCode), `${who}: ${method} ${url.replace(hook.id, ':id').replace(delivery.id, ':deliveryId')}: ${response.statusCode}`)
          t.notMatch(response.body, /whsec_/, `${who}: no secret`)
        }
      }
      const after = await ctx.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
      t.same({ url: after.url, events: after.events, enabled: after.enabled }, { url: before.url, events: before.events, enabled: before.enabled }, 'the endpoint is unchanged')
      t.ok(Buffer.from(after.secretEncrypted).equals(Buffer.from(before.secretEncrypted)) && after.previousSecretEncrypted === null, 'its secret was not rotated')
      t.equal(await ctx.app.db.webhookEndpoint.count(), 1, 'nothing registered')
      t.equal(await ctx.app.db.webhookDelivery.count({ where: { endpointId: hook.id } }), deliveries, 'nothing replayed')
    },
  },
  {
    id: 'WH-21',
    title: 'an admin whose sign-in is older than RECENT_AUTH_MAX_AGE_SECONDS (a refreshed token) cannot register, change, rotate (and so obtain) a secret, delete, retry or replay; reads still answer, without the secret',
    source: 'RFC 9470 §3 (insufficient_user_authentication, max_age); ASVS 5.0 V7.5.3 (re-authentication before sensitive changes); DESIGN §3.8, §3.12',
    async run (ctx, t) {
      // On the lab, whose clock this row may move (the context's clock is left alone).
      const w = world(ctx, t)
      const lab = await w.lab()
      const signedIn = await users.signupAdmin(lab.app, { label: 'wh-stale-admin' })
      const hook = await register(lab.app, signedIn.access_token, PUBLIC_URL)
      await signupEvent(lab.app)
      const delivery = await ctx.app.db.webhookDelivery.findFirstOrThrow({ where: { endpointId: hook.id } })
      const before = await ctx.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
      lab.clock.advance(lab.app.config.mfa.recentAuthMaxAgeSeconds + 60)
      await lab.app.revocations.sync()
      const refreshed = await users.refresh(lab.app, signedIn.refresh_token)
      t.equal(refreshed.statusCode, 200, 'the session refreshes: a valid access token of an old sign-in')
      const token = json<{ access_token: string }>(refreshed).access_token
      const writes: ['POST' | 'PATCH' | 'DELETE', string, Record<string, unknown>?][] = [
        ['POST', '/admin/webhooks', { url: PUBLIC_URL, events: ['*'] }],
        ['PATCH', `/admin/webhooks/${hook.id}`, { url: `https://${PUBLIC_V4}/elsewhere` }],
        ['POST', `/admin/webhooks/${hook.id}/secret`],
        ['POST', `/admin/webhooks/${hook.id}/deliveries/${delivery.id}/retry`],
        ['POST', `/admin/webhooks/${hook.id}/replay`, { since: '2026-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z' }],
        ['DELETE', `/admin/webhooks/${hook.id}`],
      ]
      for (const [method, url, payload] of writes) {
        const response = await adminCall(lab.app, token, method, url, payload)
        const label = `${method} ${url.replace(hook.id, ':id').replace(delivery.id, ':deliveryId')}`
        t.equal(response.statusCode, 401, `${label}: 401`)
        t.match(String(response.headers['www-authenticate']), /error="insufficient_user_authentication".*max_age=\d+/, `${label}: the RFC 9470 challenge`)
        t.notMatch(response.body, /whsec_/, `${label}: no secret`)
      }
      for (const url of ['/admin/webhooks', `/admin/webhooks/${hook.id}`, `/admin/webhooks/${hook.id}/deliveries`]) {
        const response = await adminCall(lab.app, token, 'GET', url)
        t.equal(response.statusCode, 200, `GET ${url.replace(hook.id, ':id')}: reads need no recent sign-in`)
        t.notMatch(response.body, /whsec_|"secret"/, `GET ${url.replace(hook.id, ':id')}: no secret`)
      }
      const after = await ctx.app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: hook.id } })
      t.equal(after.url, before.url, 'the URL is unchanged')
      t.ok(Buffer.from(after.secretEncrypted).equals(Buffer.from(before.secretEncrypted)) && after.previousSecretEncrypted === null, 'the secret was not rotated')
      t.equal(await ctx.app.db.webhookEndpoint.count(), 1, 'nothing registered or deleted')
    },
  },
  // --------------------------------------------------------------- rotation under concurrency
  {
    id: 'WH-22',
    title: 'concurrent rotations of one secret end as some serial order would: the last two secrets handed out sign the next message, the one they replaced no longer does',
    source: `${STANDARD_WEBHOOKS} (secret rotation); CWE-362 (race condition); CWE-367 (check-then-use)`,
    async run (ctx, t) {
      const w = world(ctx, t)
      const lab = await w.lab()
      const { receiver, hook, adminToken } = await labEndpoint(w, lab)
      const rotate = async () => adminCall(lab.app, adminToken, 'POST', `/admin/webhooks/${hook.id}/secret`)
      let answers: Response[]
      if (realPostgresUrl) {
        // A lock on the row, held elsewhere, lines six rotations up at their writes: the race, made deterministic.
        const holder = new pg.Client({ connectionString: ctx.database.url })
        await holder.connect()
        try {
          await holder.query('BEGIN')
          await holder.query('SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE', [hook.id])
          const pending = Array.from({ length: 6 }, rotate)
          const waiting = async () => (await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n
          // Until all six wait, or the count stays put for 300 ms (well inside a transaction's 5 s).
          let count = 0
          for (let started = Date.now(), steady = Date.now(); count < 6 && Date.now() - steady < 300 && Date.now() - started < 3_000;) {
            await new Promise((resolve) => setTimeout(resolve, 20))
            const now = await waiting()
            if (now !== count) steady = Date.now()
            count = now
          }
          t.comment(`${count} rotations waiting on the row lock`)
          await holder.query('COMMIT')
          answers = await Promise.all(pending)
        } finally {
          await holder.end()
        }
      } else {
        // The embedded database serves one connection at a time: the rotations run one after another.
        answers = await Promise.all(Array.from({ length: 6 }, rotate))
      }
      t.ok(answers.every((answer) => answer.statusCode === 200 || answer.statusCode === 409), `answers: ${answers.map((answer) => answer.statusCode).join(', ')}`)
      const handedOut = answers.filter((answer) => answer.statusCode === 200).map((answer) => json<{ secret: string }>(answer).secret)
      await signupEvent(lab.app)
      await deliver(lab.app)
      const [message] = await receiver.waitForAccepted(1)
      const at = Number(message!.timestamp) * 1000
      const signing = handedOut.filter((secret) => verifyAt(secret, message!, at) === null)
      t.comment(`${handedOut.length} secrets handed out, ${signing.length} of them sign; the message carries ${message!.signature.split(' ').length} signatures`)
      t.equal(signing.length, Math.min(2, handedOut.length), 'the last two secrets handed out sign (the current one and the one before it)')
      if (handedOut.length >= 2) t.not(verifyAt(hook.secret, message!, at), null, 'the secret in place before the rotations signs no more')
      t.ok(signing.length >= 1, 'at least the winning rotation signs')
    },
  },
]
