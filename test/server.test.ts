import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { freePort, TEST_ENV } from './helpers/app.js'
import { createTestDatabase } from './helpers/database.js'

/**
 * src/server.ts as a process: it starts, serves, and on SIGTERM or SIGINT
 * finishes the request in flight, closes and exits 0.
 */

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))

async function startServer (t: Test) {
  const database = await createTestDatabase()
  t.teardown(() => database.drop())
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, ...TEST_ENV, LOG_LEVEL: 'info', DATABASE_URL: database.url, DATABASE_POOL_MAX: String(database.poolMax), PORT: String(port), ISSUER: `http://127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const base = `http://127.0.0.1:${port}`
  for (let started = Date.now(); ;) {
    const up = await fetch(`${base}/health`).then((r) => r.ok, () => false)
    if (up) break
    if (child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`the server did not start:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { child, base, output: () => output }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: the request in flight is answered, then the process exits 0`, async (t) => {
    const { child, base, output } = await startServer(t)
    // A sign-up is in flight (bcrypt, database) when the signal arrives.
    const inFlight = fetch(`${base}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `shutdown-${signal}@server.test`, password: 'a fine passphrase' }),
    })
    for (let waited = 0; !/"url":"\/auth\/signup"/.test(output()) && waited < 10_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    child.kill(signal)
    const response = await inFlight
    t.equal(response.status, 201, 'the request in flight completed')
    const [code] = (await once(child, 'exit')) as [number | null]
    t.equal(code, 0, `exit code 0 (${output().slice(-400)})`)
    t.match(output(), /shutting down/, 'the shutdown is logged')
  })
}
