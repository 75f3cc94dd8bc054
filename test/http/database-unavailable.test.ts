import Fastify, { type LightMyRequestResponse } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { DATABASE_UNAVAILABLE_SQLSTATES } from '../../src/http/error-handler.js'
import { TEST_ENV, json } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { passwordGrant, PASSWORD, refresh, signup, signupRequest, uniqueEmail, type Account } from '../helpers/users.js'

/**
 * A database that cannot serve now answers 503 with Retry-After (DESIGN §4),
 * whichever layer reports it. Postgres itself raises each SQLSTATE of
 * DATABASE_UNAVAILABLE_SQLSTATES: a trigger on audit_events raises the code
 * a one-row control table names. Every path below writes an audit event, each
 * through another layer: a Prisma model write (P2039), one inside a Prisma
 * transaction, a Prisma raw query (P2010) and the raw pg pool (app.sql).
 * Seen under load: a Postgres restart's 57P03 through Prisma answered 500.
 */

const database = await createTestDatabase()
const config = loadConfig({ ...TEST_ENV, DATABASE_URL: database.url, DATABASE_POOL_MAX: String(database.poolMax) })
const server = Fastify(serverOptions(config))
await server.register(fp(app), { config })
// No route writes through $queryRaw/$executeRaw on a request, so this one stands in for them.
await server.register(async (scope) => {
  scope.post('/test/raw-audit', async () => {
    await scope.db.$executeRaw`INSERT INTO audit_events (type) VALUES ('login_failed')`
    return { ok: true }
  })
})
await server.ready()

const FAULT_SETUP = [
  'CREATE TABLE fault_injection (code text)',
  'INSERT INTO fault_injection VALUES (NULL)',
  `CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE injected text := (SELECT code FROM fault_injection);
   BEGIN
     IF injected IS NOT NULL THEN RAISE EXCEPTION 'simulated fault' USING ERRCODE = injected; END IF;
     RETURN NEW;
   END $$`,
  'CREATE TRIGGER inject_fault BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION inject_fault()',
]
for (const text of FAULT_SETUP) await server.sql.query({ text })
t.teardown(async () => {
  await server.sql.query({ text: 'DROP TRIGGER inject_fault ON audit_events' })
  await server.sql.query({ text: 'DROP FUNCTION inject_fault()' })
  await server.sql.query({ text: 'DROP TABLE fault_injection' })
  await server.close()
  await database.drop()
})

/** Makes every audit_events insert fail with `code`; null stops it. */
const injectFault = (code: string | null) => server.sql.query({ text: 'UPDATE fault_injection SET code = $1', values: [code] })

type User = Account & { retired: string }
const PATHS: Array<{ name: string; oauth: boolean; run: (user: User) => Promise<LightMyRequestResponse> }> = [
  { name: 'wrong password (login_failed: Prisma model write, P2039)', oauth: true, run: (u) => passwordGrant(server, u.email, { password: 'not the password' }) },
  { name: 'refresh replay in the grace window (refresh_token_replayed: P2039)', oauth: true, run: (u) => refresh(server, u.retired) },
  { name: 'sign-up (user_signed_up in a Prisma transaction)', oauth: false, run: () => signupRequest(server, { email: uniqueEmail(), password: PASSWORD }) },
  { name: 'Prisma raw query (P2010)', oauth: false, run: () => server.inject({ method: 'POST', url: '/test/raw-audit' }) },
  { name: 'password grant (login_succeeded: session start on the pg pool)', oauth: true, run: (u) => passwordGrant(server, u.email) },
]

/** A user with a retired refresh token still inside the grace window, made while no fault is set. */
async function freshUser (): Promise<User> {
  const user = await signup(server)
  const rotated = await refresh(server, user.refresh_token)
  if (rotated.statusCode !== 200) throw new Error(`refresh: ${rotated.statusCode} ${rotated.body}`)
  return { ...user, retired: user.refresh_token }
}

/** Runs every path with `code` injected and hands each answer to `check`. */
async function withFault (t: Test, code: string, check: (response: LightMyRequestResponse, oauth: boolean, name: string) => void) {
  const user = await freshUser()
  await injectFault(code)
  t.teardown(() => injectFault(null))
  for (const path of PATHS) check(await path.run(user), path.oauth, path.name)
}

for (const code of DATABASE_UNAVAILABLE_SQLSTATES) {
  t.test(`SQLSTATE ${code} answers 503 with Retry-After on every path`, (t) =>
    withFault(t, code, (response, oauth, name) => {
      t.equal(response.statusCode, 503, name)
      t.ok(response.headers['retry-after'], `${name}: retry-after`)
      const body = json(response)
      t.equal(oauth ? body.error : body.code, oauth ? 'temporarily_unavailable' : 'database_unavailable', `${name}: body`)
    })
  )
}

// Not an outage: must stay a 500, or the test above could pass by answering 503 to anything.
for (const code of ['23514', 'P0001']) {
  t.test(`SQLSTATE ${code} (not an outage) answers 500 on every path`, (t) =>
    withFault(t, code, (response, oauth, name) => {
      t.equal(response.statusCode, 500, name)
      t.notOk(response.headers['retry-after'], `${name}: no retry-after`)
      t.equal(json(response)[oauth ? 'error' : 'code'], oauth ? 'server_error' : 'internal_error', `${name}: body`)
    })
  )
}
