import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { readMigrations } from '../../../src/db/migrate.js'
import { PROJECT_ROOT } from '../../../src/paths.js'
import { appsOn, buildTestApp, json } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { connectRedis, REDIS_URL } from '../../helpers/redis.js'

/**
 * GET /health (the process: version and uptime, no I/O) and GET /ready (the
 * database's latency and migration level, the signing key, Redis and SMTP;
 * 503 when the database does not answer), and their schemas in the OpenAPI
 * document. Nothing either returns is a secret.
 */

const database = await createTestDatabase()
t.teardown(() => database.drop())
const appOn = appsOn(database)
const { version } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }
// A Redis to probe, when one runs here (CI starts one).
const redisProbe = await connectRedis()
redisProbe?.disconnect()

interface Readiness {
  status: string
  database: { latencyMs: number; migration: string | null; appliedMigrations: number }
  signingKeyId: string | null
  redis: { status: string; latencyMs?: number }
  smtp: { status: string; sent?: number; failed?: number; dead?: number }
}

t.test('/health: the version and the uptime', async (t) => {
  const { app } = await appOn(t)
  const first = await app.inject({ method: 'GET', url: '/health' })
  t.equal(first.statusCode, 200)
  const body = json<{ status: string; version: string; uptimeSeconds: number }>(first)
  t.same(Object.keys(body).sort(), ['status', 'uptimeSeconds', 'version'])
  t.equal(body.status, 'ok', 'the existing field stays')
  t.equal(body.version, version, "package.json's version")
  t.ok(body.uptimeSeconds > 0 && body.uptimeSeconds <= process.uptime() + 0.001, `the process's uptime (${body.uptimeSeconds} s)`)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const later = json<{ uptimeSeconds: number }>(await app.inject({ method: 'GET', url: '/health' }))
  t.ok(later.uptimeSeconds > body.uptimeSeconds, 'and it grows')
})

t.test('/ready: the database latency and migration level, the signing key, Redis and SMTP unset', async (t) => {
  const { app, config } = await appOn(t)
  const response = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(response.statusCode, 200, response.body)
  const body = json<Readiness>(response)
  t.equal(body.status, 'ok', 'the existing field stays')
  const migrations = await readMigrations()
  t.ok(migrations.length > 0)
  t.equal(body.database.migration, migrations.at(-1)!.name, 'the last applied migration, by name')
  t.equal(body.database.appliedMigrations, migrations.length, 'every migration is applied')
  t.ok(typeof body.database.latencyMs === 'number' && body.database.latencyMs >= 0 && body.database.latencyMs < 5_000, `latency ${body.database.latencyMs} ms`)
  t.equal(body.signingKeyId, app.keys.currentKey()!.kid, 'the key that signs now')
  const jwks = json<{ keys: { kid: string }[] }>(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
  t.ok(jwks.keys.some((key) => key.kid === body.signingKeyId), 'a kid the JWKS publishes')
  t.same(body.redis, { status: 'not_configured' })
  t.same(body.smtp, { status: 'not_configured' })
  const text = response.body
  t.notOk(text.includes(config.secretKey!), 'no SECRET_KEY')
  t.notOk(text.includes(database.url) || text.includes(new URL(database.url).host), 'no database URL or host')
})

t.test('/ready with REDIS_URL and SMTP_URL set: their state, no URL, and still 200 when Redis is down', async (t) => {
  const smtpUrl = 'smtp://mailer:mail-password@127.0.0.1:1'
  const deadRedis = 'redis://:redis-password@127.0.0.1:1'
  const { app } = await appOn(t, { REDIS_URL: deadRedis, SMTP_URL: smtpUrl })
  const started = Date.now()
  const response = await app.inject({ method: 'GET', url: '/ready' })
  const tookMs = Date.now() - started
  t.equal(response.statusCode, 200, 'Redis down does not make the instance unready (rate limits skip it)')
  const body = json<Readiness>(response)
  t.same(body.redis, { status: 'down' })
  t.ok(tookMs < 3_000, `answered in ${tookMs} ms`)
  t.same(body.smtp, { status: 'configured', sent: 0, failed: 0, dead: 0 }, "this instance's delivery totals")
  for (const secret of ['redis-password', 'mail-password', '127.0.0.1:1', 'redis://', 'smtp://']) {
    t.notOk(response.body.includes(secret), `nothing of the URLs: ${secret}`)
  }
})

t.test('/ready with a Redis that answers: up, with its latency', { skip: redisProbe ? false : `no Redis at ${REDIS_URL}` }, async (t) => {
  const { app } = await appOn(t, { REDIS_URL })
  const body = json<Readiness>(await app.inject({ method: 'GET', url: '/ready' }))
  t.equal(body.redis.status, 'up')
  t.ok(typeof body.redis.latencyMs === 'number' && body.redis.latencyMs >= 0, `latency ${body.redis.latencyMs} ms`)
  const again = json<Readiness>(await app.inject({ method: 'GET', url: '/ready' }))
  t.equal(again.redis.status, 'up', 'the probe connection is kept')
})

t.test('a database that stops answering: /ready 503 as before, /health still 200 (it does no I/O)', async (t) => {
  const own = await createTestDatabase()
  t.teardown(() => own.drop())
  const built = await buildTestApp({}, { database: own })
  t.teardown(built.close)
  t.equal((await built.app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  await own.drop()
  const ready = await built.app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(json(ready).code, 'database_unavailable')
  t.equal(ready.headers['retry-after'], '2')
  const health = await built.app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  t.equal(json(health).version, version)
})

t.test('the OpenAPI document describes the new fields', async (t) => {
  const { app } = await appOn(t)
  type Schema = { properties?: Record<string, Schema>; required?: string[] }
  const document = json<{ paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: Schema }> }> } }> }>(
    await app.inject({ url: '/docs/json' })
  )
  const schemaOf = (path: string, status: string) => document.paths[path]!.get.responses[status]!.content['application/json']!.schema
  const health = schemaOf('/health', '200')
  t.same(Object.keys(health.properties ?? {}).sort(), ['status', 'uptimeSeconds', 'version'])
  const ready = schemaOf('/ready', '200')
  t.same(Object.keys(ready.properties ?? {}).sort(), ['database', 'redis', 'signingKeyId', 'smtp', 'status'])
  t.same(Object.keys(ready.properties!.database!.properties ?? {}).sort(), ['appliedMigrations', 'latencyMs', 'migration'])
  t.ok(document.paths['/ready']!.get.responses['503'], 'the 503 stays documented')
})
