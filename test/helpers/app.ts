import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createTestDatabase, type TestDatabase } from './database.js'

export interface TestApp {
  app: FastifyInstance
  config: Config
  database: TestDatabase
  clock: TestClock
  close(): Promise<void>
}

/** A clock tests move by hand; it starts at the real time and runs with it. */
export class TestClock {
  private offsetMs = 0
  now = (): number => Date.now() + this.offsetMs
  advance (seconds: number): void {
    this.offsetMs += seconds * 1000
  }
}

/** Environment the tests run with; fast bcrypt, no rate limit unless a test asks. */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  BCRYPT_COST: '4',
  SECRET_KEY: randomBytes(32).toString('base64url'),
  ISSUER: 'http://auth.test',
  CORS_ORIGINS: 'http://spa.test',
  COOKIE_SECURE: 'true',
  AUTH_RATE_LIMIT_PER_MINUTE: '0',
  // The suites of the password grant run with it on; tests of its absence say PASSWORD_GRANT: 'disabled'.
  PASSWORD_GRANT: 'enabled',
  OTP_RATE_LIMIT_PER_USER: '0',
  EMAIL_RATE_LIMIT_PER_ADDRESS_PER_HOUR: '0',
  EMAIL_RATE_LIMIT_PER_IP_PER_HOUR: '0',
  // The embedded test database runs in the test process and stalls its event
  // loop on a loaded CI machine; load shedding is tested on its own.
  MAX_EVENT_LOOP_DELAY_MS: '0',
  // Tests that move the clock by weeks would otherwise race a timed pass;
  // retention runs when a test asks (app.retention.runPass()).
  RETENTION_INTERVAL_SECONDS: '0',
}

/**
 * Builds the app on its own fresh database, as server.ts does, with a
 * controllable clock. `env` overrides TEST_ENV; `database` shares one
 * database between several instances (scale-out tests).
 */
export async function buildTestApp (
  env: Record<string, string> = {},
  options: { database?: TestDatabase; clock?: TestClock } = {}
): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase())
  const config = loadConfig({
    ...TEST_ENV,
    DATABASE_URL: database.url,
    DATABASE_POOL_MAX: String(database.poolMax),
    ...env,
  })
  const clock = options.clock ?? new TestClock()
  const server = Fastify(serverOptions(config))
  await server.register(fp(app), { config, now: clock.now })
  await server.ready()
  return {
    app: server,
    config,
    database,
    clock,
    async close () {
      await server.close()
      if (!options.database) await database.drop()
    },
  }
}

/**
 * Apps of their own (and clocks of their own) on one shared database, each
 * closed when its test ends: for files whose tests move the clock.
 */
export function appsOn (database: TestDatabase): (t: Test, env?: Record<string, string>) => Promise<TestApp> {
  return async (t, env = {}) => {
    const built = await buildTestApp(env, { database })
    t.teardown(built.close)
    return built
  }
}

/**
 * One app on its own fresh database for a whole test file, closed and
 * dropped when the file's tests end. Tests that need other settings build a
 * second app on `database`.
 */
export async function fileTestApp (env: Record<string, string> = {}): Promise<TestApp> {
  const database = await createTestDatabase()
  const testApp = await buildTestApp(env, { database })
  t.teardown(async () => {
    await testApp.close()
    await database.drop()
  })
  return testApp
}

/** A loopback port free at the moment of asking. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/**
 * The app listening on 127.0.0.1 at the URL its ISSUER names, for clients
 * that speak real HTTP. `env` gets the issuer so it can name it elsewhere.
 * Another process may take the probed port before listen: then it retries.
 */
export async function listeningTestApp (env: (issuer: string) => Record<string, string> = () => ({})): Promise<TestApp & { issuer: string }> {
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const issuer = `http://127.0.0.1:${port}`
    const testApp = await buildTestApp({ ISSUER: issuer, ...env(issuer) })
    try {
      await testApp.app.listen({ port, host: '127.0.0.1' })
      return { ...testApp, issuer }
    } catch (error) {
      lastError = error
      await testApp.close()
      if ((error as { code?: string }).code !== 'EADDRINUSE') throw error
    }
  }
  throw lastError
}

/** The parsed JSON body of an injected response. */
export function json<T = Record<string, unknown>> (response: LightMyRequestResponse): T {
  return JSON.parse(response.body) as T
}
