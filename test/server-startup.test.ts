import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { loadEnvFile } from '../src/config.js'
import { PROJECT_ROOT } from '../src/paths.js'
import { runProgram, type ProgramRun } from './helpers/program.js'

/**
 * What a newcomer meets when starting src/server.ts as a process:
 * - the optional ./.env of the working directory is read, the real
 *   environment wins, the start log names the file and never a value, and
 *   NODE_ENV=test (the test suite's own processes) skips it;
 * - a DATABASE_URL that cannot be reached ends in one sentence naming the
 *   variable and the host, never the password, and exit 1, at once;
 * - `--pretty` (npm run dev) logs readable lines; without it, JSON as before.
 *
 * The server runs from its TypeScript source (tsx, resolved here so that the
 * working directory can be a bare temporary folder), in an environment of
 * only what each case gives it.
 */

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))
const TSX = import.meta.resolve('tsx')
const UNREACHABLE = 'postgresql://u:secret@127.0.0.1:1/x'
const SECRET_KEY = 'k'.repeat(48)

type Run = ProgramRun

/** Starts the server in `cwd` with exactly `env` (and PATH); resolves when it exits (killed after 60 s). */
function runServer (cwd: string, env: Record<string, string>, args: string[] = []): Promise<Run> {
  return runProgram(process.execPath, ['--import', TSX, SERVER, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env } })
}

/** The JSON log lines of a run. */
function logLines (run: Run): Record<string, unknown>[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

async function tempDir (t: Test, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'token-auth-startup-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  return dir
}

t.test('an unreachable DATABASE_URL: one sentence naming the variable and the host, no password, exit 1', async (t) => {
  const cwd = await tempDir(t)
  const run = await runServer(cwd, { DATABASE_URL: UNREACHABLE, SECRET_KEY, LOG_LEVEL: 'info' })
  t.equal(run.code, 1, `exit 1 (${run.stderr})`)
  const lines = run.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr: ${run.stderr}`)
  t.match(lines[0], /DATABASE_URL/, 'names the variable')
  t.match(lines[0], /127\.0\.0\.1:1\b/, 'names the host and port')
  t.match(lines[0], /connection refused/, 'says what happened')
  t.notMatch(`${run.stdout}${run.stderr}`, /secret/, 'never the password')
  t.notMatch(run.stderr, /^\s+at /m, 'no stack')
  t.notMatch(run.stderr, /ECONNREFUSED/, 'not the raw error')
  t.ok(run.ms < 30_000, `exits at once (${run.ms} ms, most of it compiling TypeScript)`)
  // Production logging unchanged: JSON lines.
  const logs = logLines(run)
  t.ok(logs.some((line) => line.msg === 'database: PostgreSQL'), 'the log lines are JSON')
  t.ok(logs.some((line) => line.envFile === join(cwd, '.env') && /no \.env/.test(String(line.msg))), 'the start log says no .env was found, and where it looked')
})

t.test('./.env is read; the environment wins; the log names the file and no value', async (t) => {
  const fileSecretKey = 'from-the-file-'.padEnd(48, 'f')
  const cwd = await tempDir(t, {
    '.env': [
      '# a developer\'s settings',
      'DATABASE_URL=postgresql://u:file-password@127.0.0.1:1/fromfile',
      `SECRET_KEY=${fileSecretKey}`,
      'LOG_LEVEL=info',
      '',
    ].join('\n'),
  })
  const [fromFile, overridden] = await Promise.all([
    runServer(cwd, {}),
    runServer(cwd, { DATABASE_URL: 'postgresql://u:env-password@127.0.0.1:2/fromenv' }),
  ])

  t.equal(fromFile.code, 1, `exit 1 (${fromFile.stderr})`)
  t.match(fromFile.stderr, /DATABASE_URL names at 127\.0\.0\.1:1\b/, 'DATABASE_URL came from the file')
  const start = logLines(fromFile).find((line) => line.envFile === join(cwd, '.env'))
  t.ok(start, 'the start log names the file')
  t.same(start?.fromFile, ['DATABASE_URL', 'LOG_LEVEL', 'SECRET_KEY'], 'and the names it took from it (sorted)')
  t.same(start?.environmentWins, [])

  t.equal(overridden.code, 1)
  t.match(overridden.stderr, /DATABASE_URL names at 127\.0\.0\.1:2\b/, "the environment's DATABASE_URL, not the file's")
  const overriddenStart = logLines(overridden).find((line) => line.envFile === join(cwd, '.env'))
  t.same(overriddenStart?.fromFile, ['LOG_LEVEL', 'SECRET_KEY'])
  t.same(overriddenStart?.environmentWins, ['DATABASE_URL'], 'the log says the environment won, by name')

  for (const run of [fromFile, overridden]) {
    const output = run.stdout + run.stderr
    for (const value of [fileSecretKey, 'file-password', 'env-password']) t.notOk(output.includes(value), `no value logged: ${value}`)
  }
})

t.test('NODE_ENV=test in the environment: .env is not read (the test suite is unaffected by a developer\'s file)', async (t) => {
  const cwd = await tempDir(t, { '.env': 'DATABASE_URL=postgresql://u:file-password@127.0.0.1:1/fromfile\nLOG_LEVEL=info\n' })
  const run = await runServer(cwd, { NODE_ENV: 'test', DATABASE_URL: 'postgresql://u:pw@127.0.0.1:2/x', SECRET_KEY, LOG_LEVEL: 'info' })
  t.equal(run.code, 1)
  t.match(run.stderr, /127\.0\.0\.1:2\b/)
  const start = logLines(run).find((line) => line.envFile === join(cwd, '.env'))
  t.match(start?.msg, /not read under NODE_ENV=test/)
  t.notOk(start?.fromFile, 'nothing taken from it')
})

t.test('loadEnvFile: the environment wins, even with an empty value; an absent file is fine; NODE_ENV=test skips it', async (t) => {
  const dir = await tempDir(t, { '.env': 'A=from file\nB=from file\nC="quoted # not a comment"\nexport D=exported\n# E=commented\n' })
  const env: NodeJS.ProcessEnv = { B: 'from env', C: '' }
  t.same(loadEnvFile({ dir, env }), { read: true, path: join(dir, '.env'), applied: ['A', 'D'], overridden: ['B', 'C'] })
  t.same(env, { A: 'from file', B: 'from env', C: '', D: 'exported' })
  const empty = await tempDir(t)
  t.same(loadEnvFile({ dir: empty, env: {} }), { read: false, path: join(empty, '.env'), reason: 'absent' })
  const testEnv: NodeJS.ProcessEnv = { NODE_ENV: 'test' }
  t.same(loadEnvFile({ dir, env: testEnv }), { read: false, path: join(dir, '.env'), reason: 'NODE_ENV=test' })
  t.same(testEnv, { NODE_ENV: 'test' }, 'nothing applied')
})

t.test('--pretty (npm run dev) logs readable lines; npm start does not', async (t) => {
  const cwd = await tempDir(t)
  const run = await runServer(cwd, { DATABASE_URL: UNREACHABLE, SECRET_KEY, LOG_LEVEL: 'info' }, ['--pretty'])
  t.equal(run.code, 1, `exit 1 (${run.stderr})`)
  t.match(run.stdout, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: database: PostgreSQL$/m, 'a pino-pretty line, flushed before the exit')
  t.same(logLines(run), [], 'no JSON line')
  t.notMatch(run.stdout + run.stderr, /secret/, 'the password is not logged')
  const { scripts } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.match(scripts.dev, /src\/server\.ts --pretty\b/, 'npm run dev passes --pretty')
  t.notMatch(scripts.start, /--pretty|pino-pretty/, 'npm start logs JSON')
})
