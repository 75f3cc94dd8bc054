import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { PasswordHasher, PasswordQueueFullError } from '../../../src/features/accounts/passwords.js'
import type { SqlPool } from '../../../src/db/sql-pool.js'
import { DomainError } from '../../../src/errors.js'
import { attemptResultOf, OUTBOXES, OutboxReader, ServiceMetrics } from '../../../src/features/metrics/metrics.js'
import { parsePrometheusText } from '../../helpers/prometheus.js'
import { PROJECT_ROOT } from '../../../src/paths.js'
import { fileTestApp, json } from '../../helpers/app.js'
import { scrape, valueOf, type Exposition } from '../../helpers/prometheus.js'
import { advance, centreStep, enrolTotp, mfaOtpGrant, mfaToken, totpCode } from '../../helpers/totp.js'
import { passwordGrant, refresh, signup, sidOf, type Account } from '../../helpers/users.js'

/**
 * The metrics of DESIGN §3.18, scraped as Prometheus does: over HTTP from
 * the listener of METRICS_PORT (0: a free port), the text parsed. Each test
 * does something and checks the counters it should move moved by exactly
 * that; the last checks that no label value anywhere is a user id, an
 * address, a session id or a token of the users the tests made.
 */

const main = await fileTestApp({
  METRICS_PORT: '0',
  METRICS_HOST: '127.0.0.1',
  // Small enough for a 429 in a few requests; every other request comes from an address of its own.
  AUTH_RATE_LIMIT_PER_MINUTE: '3',
  // A retired refresh token presented again is reuse at once.
  REFRESH_GRACE_SECONDS: '0',
})
const { app } = main
const address = app.metricsAddress!

/** Everything of the users the tests made: none of it may appear in the metrics. */
const secrets = new Set<string>()
let nextAddress = 0
/** A client address of its own, so the per-IP budgets (3 a minute here) never trip by accident. */
const freshAddress = () => `10.77.${Math.floor(++nextAddress / 250)}.${nextAddress % 250}`

async function newUser (label: string): Promise<Account> {
  const user = await signup(app, { label, remoteAddress: freshAddress() })
  for (const value of [user.id, user.email, user.sessionId, user.access_token, user.refresh_token]) secrets.add(value)
  return user
}

/** The counters' values after `action`, less those before. */
async function delta (action: () => Promise<void>): Promise<(name: string, labels?: Record<string, string>) => number> {
  const before = await scrape(address)
  await action()
  const after = await scrape(address)
  return (name, labels = {}) => valueOf(after, name, labels) - valueOf(before, name, labels)
}

t.test('the metrics listener serves Prometheus text; the public port has no /metrics', async (t) => {
  t.match(address, /^http:\/\/127\.0\.0\.1:\d+$/, 'METRICS_PORT=0 took a free port on METRICS_HOST')
  t.not(new URL(address).port, String(main.config.port))
  const scraped = await scrape(address)
  t.match(scraped.contentType, /^text\/plain; version=0\.0\.4/)
  t.equal(scraped.types.get('auth_logins_total'), 'counter')
  t.equal(scraped.types.get('auth_bcrypt_queue_wait_seconds'), 'histogram')
  t.equal(scraped.types.get('auth_outbox_oldest_pending_seconds'), 'gauge')
  t.ok(scraped.types.has('process_cpu_user_seconds_total'), 'prom-client\'s process metrics')
  t.ok(scraped.types.has('nodejs_eventloop_lag_seconds'))
  t.equal(valueOf(scraped, 'auth_logins_total', { method: 'password', result: 'failure' }), 0, 'fixed series exist from the start')
  t.ok(scraped.samples.some((s) => s.name === 'auth_webhook_deliveries_total' && s.labels.result === 'dead'))

  const publicAnswer = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(publicAnswer.statusCode, 404, 'not on the public port')
  t.notMatch(publicAnswer.body, /auth_logins_total/)
  t.equal((await fetch(`${address}/other`)).status, 404, 'the listener serves /metrics only')
  t.equal((await fetch(`${address}/metrics`, { method: 'POST' })).status, 405)
})

t.test('password logins: a success and a failure, at the token endpoint and the challenge endpoint', async (t) => {
  const user = await newUser('login')
  const moved = await delta(async () => {
    t.equal((await passwordGrant(app, user.email, { remoteAddress: freshAddress() })).statusCode, 200)
    t.equal((await passwordGrant(app, user.email, { password: 'not the password', remoteAddress: freshAddress() })).statusCode, 400)
    const challenge = await app.inject({
      method: 'POST',
      url: '/oauth/authorize-challenge',
      remoteAddress: freshAddress(),
      payload: {
        client_id: 'mobile',
        response_type: 'code',
        code_challenge: randomBytes(32).toString('base64url'),
        code_challenge_method: 'S256',
        username: user.email,
        password: 'a fine passphrase',
      },
    })
    t.equal(challenge.statusCode, 200, challenge.body)
  })
  t.equal(moved('auth_logins_total', { method: 'password', result: 'success' }), 2)
  t.equal(moved('auth_logins_total', { method: 'password', result: 'failure' }), 1)
  t.equal(moved('auth_logins_total', { method: 'passkey', result: 'success' }), 0)
  t.ok(moved('auth_bcrypt_queue_wait_seconds_count') >= 3, 'each check passed the bcrypt queue')
})

t.test('a refresh, then the retired token again: reuse detected', async (t) => {
  const user = await newUser('refresh')
  const moved = await delta(async () => {
    const first = await refresh(app, user.refresh_token)
    t.equal(first.statusCode, 200)
    secrets.add(json<{ refresh_token: string }>(first).refresh_token)
    const again = await refresh(app, user.refresh_token)
    t.equal(again.statusCode, 400)
    t.equal(json(again).error, 'invalid_grant')
  })
  t.equal(moved('auth_token_refreshes_total', { result: 'success' }), 1)
  t.equal(moved('auth_token_refreshes_total', { result: 'reused' }), 1)
  t.equal(moved('auth_refresh_token_reuse_total'), 1, 'one session revoked for reuse')
})

t.test('a step-up with the password', async (t) => {
  const user = await newUser('step-up')
  const moved = await delta(async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/token',
      remoteAddress: freshAddress(),
      payload: { grant_type: 'urn:token-auth:grant-type:step-up', refresh_token: user.refresh_token, password: 'a fine passphrase' },
    })
    t.equal(response.statusCode, 200, response.body)
  })
  t.equal(moved('auth_step_ups_total', { factor: 'password', result: 'success' }), 1)
  t.equal(moved('auth_token_refreshes_total', { result: 'success' }), 0, 'a step-up rotates but is no refresh')
})

t.test('the second step of a login with a TOTP code: a wrong code, then the right one', async (t) => {
  const user = await newUser('mfa')
  await centreStep(main)
  const { secret } = await enrolTotp(app, user.access_token, main.clock.now())
  // The confirmation spent this step's code.
  await advance(main, 30)
  await centreStep(main)
  const moved = await delta(async () => {
    const token = await mfaToken(app, user.email, { remoteAddress: freshAddress() })
    secrets.add(token)
    const code = totpCode(secret, main.clock.now())
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0')
    t.equal((await mfaOtpGrant(app, token, { otp: wrong })).statusCode, 400)
    const finished = await mfaOtpGrant(app, token, { otp: code })
    t.equal(finished.statusCode, 200, finished.body)
    secrets.add(sidOf(json<{ access_token: string }>(finished).access_token))
  })
  t.equal(moved('auth_logins_total', { method: 'password', result: 'mfa_required' }), 1)
  t.equal(moved('auth_logins_total', { method: 'second_factor', result: 'failure' }), 1)
  t.equal(moved('auth_logins_total', { method: 'second_factor', result: 'success' }), 1)
  t.equal(moved('auth_second_factor_checks_total', { factor: 'totp', result: 'failure' }), 1)
  t.equal(moved('auth_second_factor_checks_total', { factor: 'totp', result: 'success' }), 1)
})

t.test('a 429 of the password budget, labelled by budget and route pattern', async (t) => {
  const user = await newUser('limited')
  const from = freshAddress()
  const statuses: number[] = []
  const moved = await delta(async () => {
    for (let i = 0; i < 4; i++) statuses.push((await passwordGrant(app, user.email, { password: 'wrong guess', remoteAddress: from })).statusCode)
  })
  t.same(statuses, [400, 400, 400, 429])
  t.equal(moved('auth_rate_limited_total', { budget: 'password', route: '/auth/token' }), 1)
  t.equal(moved('auth_logins_total', { method: 'password', result: 'rate_limited' }), 1)
  t.equal(moved('auth_logins_total', { method: 'password', result: 'failure' }), 3)
})

t.test('outbox gauges: the oldest pending email\'s age and the dead ones, by kind', async (t) => {
  const now = main.clock.now()
  await app.sql.query({
    text: `INSERT INTO email_outbox (id, recipient, template, created_at, next_attempt_at, dead_at, attempts)
           VALUES (gen_random_uuid(), 'pending@example.test', 'password_reset', $1, $1, NULL, 0),
                  (gen_random_uuid(), 'dead@example.test', 'password_reset', $1, NULL, $2, 8)`,
    values: [new Date(now - 600_000), new Date(now - 60_000)],
  })
  const scraped = await scrape(address)
  t.ok(valueOf(scraped, 'auth_outbox_oldest_pending_seconds', { kind: 'email' }) >= 600, 'at least the inserted row\'s age')
  t.ok(valueOf(scraped, 'auth_outbox_dead_messages', { kind: 'email' }) >= 1)
  // A kind whose table is not (yet) migrated has no sample; one whose table exists has both.
  for (const { kind, table } of OUTBOXES) {
    const { rows } = await app.sql.query<{ present: boolean }>({ text: 'SELECT to_regclass($1) IS NOT NULL AS present', values: [table] })
    const has = (name: string) => scraped.samples.some((s) => s.name === name && s.labels.kind === kind)
    t.equal(has('auth_outbox_oldest_pending_seconds'), rows[0]!.present, `${kind}: oldest pending ${rows[0]!.present ? 'present' : 'absent'}`)
    t.equal(has('auth_outbox_dead_messages'), rows[0]!.present, `${kind}: dead ${rows[0]!.present ? 'present' : 'absent'}`)
  }
})

t.test('revocation lag, signing-key age, webhook deliveries', async (t) => {
  await app.revocations.sync()
  const moved = await delta(async () => {
    app.metrics.webhookDelivery('delivered')
    app.metrics.webhookDelivery('dead')
  })
  t.equal(moved('auth_webhook_deliveries_total', { result: 'delivered' }), 1)
  t.equal(moved('auth_webhook_deliveries_total', { result: 'dead' }), 1)
  t.equal(moved('auth_webhook_deliveries_total', { result: 'failed' }), 0)
  const scraped = await scrape(address)
  const lag = valueOf(scraped, 'auth_revocation_sync_lag_seconds')
  t.ok(lag >= 0 && lag < 5, `revocation lag ${lag} s`)
  const keyAge = valueOf(scraped, 'auth_signing_key_age_seconds')
  t.ok(keyAge >= 0 && keyAge < 3600, `signing key age ${keyAge} s`)
})

t.test('no label value, nowhere in the text, is a user id, an address, a session id or a token', async (t) => {
  const scraped: Exposition & { text: string } = await scrape(address)
  t.ok(secrets.size > 20, `${secrets.size} values of the tests' users`)
  const labelValues = new Set(scraped.samples.flatMap((s) => Object.values(s.labels)))
  const leaked = [...secrets].filter((secret) => labelValues.has(secret) || scraped.text.includes(secret))
  t.same(leaked, [], 'none appears')
  t.notOk([...labelValues].some((value) => value.includes('@')), 'no label value looks like an address')
  // The label names of the service's own metrics, each from a small fixed set.
  const own = scraped.samples.filter((s) => s.name.startsWith('auth_'))
  const names = new Set(own.flatMap((s) => Object.keys(s.labels)))
  t.same([...names].sort(), ['budget', 'factor', 'kind', 'le', 'method', 'result', 'route'])
  t.ok(own.filter((s) => s.labels.route !== undefined).every((s) => s.labels.route!.startsWith('/')), 'routes are patterns')
})

t.test('the Grafana dashboard queries only metrics the service exports', async (t) => {
  const dashboard = JSON.parse(readFileSync(join(PROJECT_ROOT, 'docs/grafana/token-auth-dashboard.json'), 'utf8')) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[]
  }
  const exported = new Set((await scrape(address)).samples.map((s) => s.name))
  const queried = dashboard.panels.flatMap((p) => p.targets ?? []).map((target) => target.expr)
  t.ok(queried.length >= 15, `${queried.length} queries`)
  const names = new Set(queried.flatMap((expr) => expr.match(/\b(?:auth|process|nodejs)_[a-z0-9_]+/g) ?? []))
  t.same([...names].filter((name) => !exported.has(name)), [], 'every metric a panel names is in the scrape')
  for (const name of ['auth_logins_total', 'auth_token_refreshes_total', 'auth_refresh_token_reuse_total', 'auth_outbox_oldest_pending_seconds', 'auth_webhook_deliveries_total']) {
    t.ok(names.has(name), `a panel shows ${name}`)
  }
})

t.test('bcrypt sheds: a flood of checks past the queue\'s bound is counted, and every admitted one\'s wait', async (t) => {
  const metrics = new ServiceMetrics({ now: Date.now })
  const hasher = new PasswordHasher(10, {
    maxQueueWaitMs: 1,
    queue: { waited: (seconds) => metrics.bcryptQueueWaited(seconds), shed: () => metrics.bcryptShedOne() },
  })
  const hash = await hasher.hash('a fine passphrase')
  const outcomes = await Promise.all(Array.from({ length: 30 }, () =>
    hasher.verify('a fine passphrase', hash).then(() => 'checked', (error: unknown) => (error instanceof PasswordQueueFullError ? 'shed' : 'other'))))
  const scraped = parsePrometheusText((await metrics.scrape()).body)
  const shed = outcomes.filter((o) => o === 'shed').length
  t.ok(shed > 0, `${shed} shed`)
  t.equal(valueOf(scraped, 'auth_bcrypt_shed_total'), shed, 'each shed counted')
  t.equal(valueOf(scraped, 'auth_bcrypt_queue_wait_seconds_count'), 1 + outcomes.filter((o) => o === 'checked').length, 'each admitted job\'s wait observed')
  t.equal(scraped.samples.filter((s) => s.name.startsWith('process_')).length, 0, 'no process metrics without the listener')
})

t.test('how an attempt ended, from its error', async (t) => {
  t.equal(attemptResultOf(new DomainError('invalid_grant', 'x')), 'failure')
  t.equal(attemptResultOf(new DomainError('email_not_verified', 'x')), 'failure')
  t.equal(attemptResultOf(new DomainError('mfa_required', 'x')), 'mfa_required')
  t.equal(attemptResultOf(new DomainError('insufficient_authorization', 'x')), 'mfa_required')
  t.equal(attemptResultOf(new PasswordQueueFullError(1)), 'unavailable')
  t.equal(attemptResultOf(new DomainError('invalid_request', 'x')), 'invalid_request')
  t.equal(attemptResultOf(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'unavailable')
  t.equal(attemptResultOf(new TypeError('a bug')), 'error')
})

t.test('the outbox reader: one statement over the tables there; a table of another shape leaves only itself out', async (t) => {
  const statements: string[] = []
  const fake = (tables: string[], broken: string): SqlPool => ({
    async query (statement) {
      statements.push(statement.text)
      if (statement.text.includes('to_regclass')) return { rows: tables.map((name) => ({ name })) } as never
      if (statement.text.includes(broken)) throw Object.assign(new Error(`column missing in ${broken}`), { code: '42703' })
      const kinds = statement.values as string[]
      return { rows: kinds.map((kind) => ({ kind, oldest: new Date(Date.now() - 60_000), dead: 2 })) } as never
    },
  })
  const reader = new OutboxReader(fake(['email_outbox', 'webhook_deliveries'], 'webhook_deliveries'))
  const first = await reader.read()
  t.same([...first.keys()], ['email'], 'the broken table left out, the others read')
  t.equal(first.get('email')!.dead, 2)
  statements.length = 0
  await reader.read()
  t.equal(statements.length, 1, 'then one statement a scrape, without the broken table')
  t.notMatch(statements[0]!, /webhook_deliveries/)
  t.notMatch(statements[0]!, /security_events/, 'a table not there is not queried')
})
