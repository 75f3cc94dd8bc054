import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { buildTestApp, json, TEST_ENV } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { claimsOf, injectAs, passwordGrant, PASSWORD, uniqueEmail } from '../helpers/users.js'
import { buildIsFresh, environmentWithout, runProgram, type ProgramRun } from '../helpers/program.js'

/**
 * `npm run admin:create -- --email E` (DESIGN §3.8): the password comes on
 * stdin, never as an argument. Creates an admin that can sign in, promotes an
 * existing user (audited), refuses weak passwords. On the embedded database
 * while the service runs, it goes through the running owner's socket (PGlite
 * is single-process) instead of opening the folder itself.
 *
 * The CLI runs from the build when it is current (what `npm run admin:create`
 * runs), else from its TypeScript source through tsx: never a stale build.
 */

const ROOT = join(import.meta.dirname, '../..')
// Ten CLI processes and two embedded databases on disk: on a loaded 2-core machine this file needs more than the
// suite's default per-file timeout. The root test tells the runner its own.
t.setTimeout(240_000)

// The built CLI when the build is current (faster, and the real command); else the source through tsx, never a stale build.
const COMMAND = (await buildIsFresh(ROOT))
  ? [join(ROOT, 'dist/src/cli/admin-create.js')]
  : ['--import', 'tsx', join(ROOT, 'src/cli/admin-create.ts')]
t.comment(`running the CLI as: node ${COMMAND.join(' ')}`)

type Run = ProgramRun

/** The environment of the test process without anything naming a database, key or tap. */
function baseEnv (): NodeJS.ProcessEnv {
  return { ...environmentWithout(/^(DATABASE_URL|TEST_DATABASE_URL|DATA_DIR|SECRET_KEY|NODE_OPTIONS|TAP.*|_TAPJS.*)$/), NODE_ENV: 'test', BCRYPT_COST: '4', LOG_LEVEL: 'silent' }
}

/** Runs the CLI with `args`, writing `stdin` (then closing it). */
function runCli (args: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  return runProgram(process.execPath, [...COMMAND, ...args], { cwd: ROOT, env: { ...baseEnv(), ...env }, stdin })
}

const database = await createTestDatabase()
const main = await buildTestApp({}, { database })
t.teardown(async () => {
  await main.close()
  await database.drop()
})
const cliEnv = { DATABASE_URL: database.url, SECRET_KEY: randomBytes(32).toString('base64url') }

/** Signs in and checks the token opens the admin API. */
async function assertAdminCanSignIn (t: Test, target: FastifyInstance, email: string) {
  const login = await passwordGrant(target, email)
  t.equal(login.statusCode, 200, `the admin signs in${login.statusCode === 200 ? '' : ` (${login.body})`}`)
  const token = json<{ access_token: string }>(login).access_token
  t.equal(claimsOf(token).role, 'admin', 'the access token carries the admin role')
  const users = await injectAs(target, token, 'GET', '/admin/users?limit=1')
  t.equal(users.statusCode, 200, 'and opens the admin API')
}

t.test('creates an admin from a password on stdin', async (t) => {
  const email = uniqueEmail('first-admin')
  const run = await runCli(['--email', `  ${email.toUpperCase()} `], cliEnv, `${PASSWORD}\n`)
  t.equal(run.code, 0, `exit 0 (${run.stderr})`)
  t.match(run.stdout, `created admin ${email}`)
  t.notOk(run.stdout.includes(PASSWORD) || run.stderr.includes(PASSWORD), 'the password is not echoed')

  const user = await main.app.db.user.findUnique({ where: { email } })
  t.ok(user, 'the email is stored normalised (trimmed, lower-cased)')
  t.equal(user?.role, 'admin')
  t.equal(user?.disabled, false)
  t.ok(user?.emailVerifiedAt, 'the operator vouches for the address (REQUIRE_EMAIL_VERIFICATION cannot lock the first admin out)')
  t.not(user?.passwordHash, PASSWORD, 'the password is hashed')
  t.match(user?.passwordHash, /^\$2[aby]\$04\$/, 'with bcrypt at BCRYPT_COST')
  const events = await main.app.db.auditEvent.findMany({ where: { userId: user!.id } })
  t.match(events, [{ type: 'user_signed_up', details: { role: 'admin', via: 'cli' } }], 'audited')
  await assertAdminCanSignIn(t, main.app, email)
})

t.test('promotes an existing user, audited; a second run changes nothing', async (t) => {
  const email = uniqueEmail('promoted')
  const signup = await main.app.inject({ method: 'POST', url: '/auth/signup', payload: { email, password: PASSWORD } })
  t.equal(signup.statusCode, 201)
  const { user, access_token: userToken, refresh_token: userRefreshToken } = json<{ user: { id: string }; access_token: string; refresh_token: string }>(signup)

  const run = await runCli(['--email', email], cliEnv)
  t.equal(run.code, 0, `exit 0 (${run.stderr})`)
  t.match(run.stdout, `${email} is now an admin`)
  const row = await main.app.db.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(row.role, 'admin', 'promoted')
  const events = await main.app.db.auditEvent.findMany({ where: { userId: user.id, type: 'role_changed' } })
  t.equal(events.length, 1, 'one role_changed event')
  t.match(events[0]?.details, { from: 'user', to: 'admin', via: 'cli', revokedSessions: 1 })
  const refreshed = await main.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: userRefreshToken } })
  t.equal(json<{ error: string }>(refreshed).error, 'invalid_grant', 'the session opened as a user cannot refresh into admin tokens')

  // The running service learns of the change by polling the database: the old token dies, a new login is an admin.
  const deadline = Date.now() + 2_000
  let status = 0
  while (Date.now() < deadline) {
    status = (await main.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${userToken}` } })).statusCode
    if (status === 401) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  t.equal(status, 401, 'the token naming the old role is refused by the running service')
  await assertAdminCanSignIn(t, main.app, email)

  const again = await runCli(['--email', email], cliEnv)
  t.equal(again.code, 0)
  t.match(again.stdout, 'already an admin')
  t.equal(await main.app.db.auditEvent.count({ where: { userId: user.id, type: 'role_changed' } }), 1, 'no second event')
})

t.test('refusals: weak or missing password, a password argument, no email', async (t) => {
  const cases: { label: string; args: string[]; stdin: string }[] = [
    // Refused before any database access.
    { label: 'a --password argument', args: ['--email', uniqueEmail('argument'), '--password', PASSWORD], stdin: `${PASSWORD}\n` },
    { label: 'a positional password', args: ['--email', uniqueEmail('positional'), PASSWORD], stdin: `${PASSWORD}\n` },
    { label: 'no --email', args: [], stdin: `${PASSWORD}\n` },
    // Normalised, then checked, as at sign-up: U+FF20 folds into a second @.
    { label: 'an address with two @ once normalised', args: ['--email', `x\uFF20evil.test@${uniqueEmail('fw').split('@')[1]}`], stdin: `${PASSWORD}\n` },
    // Refused after looking the email up (two connections each at most: the embedded test database serves eight).
    { label: 'a common password', args: ['--email', uniqueEmail('weak')], stdin: 'password\n' },
    { label: 'no password on stdin', args: ['--email', uniqueEmail('empty')], stdin: '' },
  ]
  const runs = await Promise.all(cases.map((c) => runCli(c.args, cliEnv, c.stdin)))
  for (const [i, { label, args }] of cases.entries()) {
    const run = runs[i]!
    t.ok(run.code !== 0 && run.code !== null, `${label}: non-zero exit (${run.code})`)
    t.ok(run.stderr.trim().length > 0, `${label}: says why on stderr`)
    const email = args[1]
    if (email) t.equal(await main.app.db.user.count({ where: { email } }), 0, `${label}: no user created`)
  }
  t.match(runs[2]!.stderr, /usage/i, 'usage is shown without --email')
  t.match(runs[3]!.stderr, /exactly one @/, 'the folded second @ is named as the problem')
  t.match(runs[4]!.stderr, /common/i, 'the common password is named as the problem')
  t.match(runs[5]!.stderr, /no password/i, 'an empty stdin is named as the problem')
  t.equal(await main.app.db.user.count({ where: { email: { contains: 'evil.test@' } } }), 0, 'no address with two @ stored')
})

t.test("embedded database: alone, the CLI opens the folder and lets go; while the service runs, it goes through the owner's socket", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'admin-create-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const lockPath = join(dataDir, 'pgdata.lock')

  // No service yet: the CLI opens (and migrates) the embedded database itself, and releases it.
  const first = uniqueEmail('embedded-alone')
  const alone = await runCli(['--email', first], { DATA_DIR: dataDir }, `${PASSWORD}\n`)
  t.equal(alone.code, 0, `exit 0 (${alone.stderr})`)
  t.match(alone.stdout, `created admin ${first}`)
  await t.rejects(readFile(lockPath, 'utf8'), { code: 'ENOENT' }, 'the lock is released when the CLI ends')

  // The service as server.ts builds it: no DATABASE_URL, so PGlite in DATA_DIR.
  const config = loadConfig({ ...TEST_ENV, DATA_DIR: dataDir })
  t.equal(config.databaseUrl, undefined, 'the service runs on the embedded database')
  const service = Fastify(serverOptions(config))
  await service.register(fp(app), { config })
  await service.ready()
  t.teardown(() => service.close())
  t.equal((await service.db.user.findUnique({ where: { email: first } }))?.role, 'admin', 'the service finds the admin the CLI made')

  const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number; url?: string }
  t.equal(lock.pid, process.pid, 'the service owns the folder')
  t.equal(new URL(lock.url!).searchParams.get('host'), dataDir, 'and publishes the URL of its socket, in DATA_DIR')

  // While the service runs: PGlite is single-process, so the CLI must use the owner's socket.
  const second = uniqueEmail('embedded-running')
  const run = await runCli(['--email', second], { DATA_DIR: dataDir }, `${PASSWORD}\n`)
  t.equal(run.code, 0, `exit 0 (${run.stderr})`)
  t.match(run.stdout, `created admin ${second}`)
  const user = await service.db.user.findUnique({ where: { email: second } })
  t.equal(user?.role, 'admin', "the admin is visible on the owner's own connection")
  await assertAdminCanSignIn(t, service, second)
  await assertAdminCanSignIn(t, service, first)
  const after = JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number }
  t.equal(after.pid, process.pid, 'the service still owns the folder')
})
