import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildIsFresh, environmentWithout, runProgram, type ProgramRun } from '../helpers/program.js'

/**
 * The command lines of the server and of every CLI (src/cli/*): `--help`
 * and `-h` print the usage on stdout and exit 0 (also with an unknown flag
 * beside them, and before any configuration is read); an unknown flag, a
 * missing value or a stray argument gets one line on stderr and exit 2, never
 * a stack. The CLIs also read ./.env, and name an unreachable DATABASE_URL in
 * one sentence, as the server does (test/server-startup.test.ts).
 *
 * Each runs from the build when it is current (what the npm scripts run), else
 * from its TypeScript source through tsx: never a stale build.
 */

const ROOT = join(import.meta.dirname, '../..')
const TSX = import.meta.resolve('tsx')

const fresh = await buildIsFresh(ROOT)
t.comment(fresh ? 'running the build (dist/)' : 'running the sources through tsx (the build is not current)')

/** The npm script of each entry point, and its source under src/. */
const PROGRAMS = [
  { script: 'start', source: 'server.ts', name: 'server', usage: /^Usage: npm start$/m },
  { script: 'admin:create', source: 'cli/admin-create.ts', name: 'admin:create', usage: /^Usage: npm run admin:create -- --email <email>/m },
  { script: 'db:migrate', source: 'cli/migrate.ts', name: 'db:migrate', usage: /^Usage: npm run db:migrate$/m },
  { script: 'keys:rotate', source: 'cli/rotate-keys.ts', name: 'keys:rotate', usage: /^Usage: npm run keys:rotate$/m },
] as const

const command = (source: string) =>
  fresh ? [join(ROOT, 'dist/src', source.replace(/\.ts$/, '.js'))] : ['--import', TSX, join(ROOT, 'src', source)]

type Run = ProgramRun

/**
 * The environment of a newcomer's shell: no database, key or test settings;
 * and a configuration that would not even load (DATABASE_URL without
 * SECRET_KEY), so that a program that reads it before answering --help fails.
 */
function shellEnv (): NodeJS.ProcessEnv {
  return { ...environmentWithout(/^(DATABASE_URL|TEST_DATABASE_URL|REDIS_URL|SMTP_URL|DATA_DIR|SECRET_KEY|NODE_ENV|NODE_OPTIONS|TAP.*|_TAPJS.*)$/), DATABASE_URL: 'postgresql://u:pw@127.0.0.1:1/x' }
}

/** Runs `file args` in `cwd` (default the package's folder) with `env` (default shellEnv()). */
function run (file: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return runProgram(file, args, { cwd: options.cwd ?? ROOT, env: options.env ?? shellEnv() })
}

const node = (source: string, args: string[], options?: Parameters<typeof run>[2]) => run(process.execPath, [...command(source), ...args], options)

for (const program of PROGRAMS) {
  t.test(`${program.script}: --help and unknown flags`, async (t) => {
    const [help, short, helpWithJunk, unknown, stray] = await Promise.all([
      node(program.source, ['--help']),
      node(program.source, ['-h']),
      node(program.source, ['--bogus', '--help']),
      node(program.source, ['--bogus']),
      node(program.source, ['stray']),
    ])
    for (const [label, result] of [['--help', help], ['-h', short], ['--bogus --help', helpWithJunk]] as const) {
      t.equal(result.code, 0, `${label}: exit 0 (${result.stderr})`)
      t.match(result.stdout, program.usage, `${label}: the usage on stdout`)
      t.match(result.stdout, /^Options:$/m)
      t.match(result.stdout, /--help/)
      t.match(result.stdout, /\.env/, `${label}: says where configuration comes from`)
      t.equal(result.stderr, '', `${label}: nothing on stderr (no configuration was read: it would have failed)`)
    }
    t.equal(unknown.code, 2, `an unknown flag: exit 2 (${unknown.stderr})`)
    t.equal(unknown.stdout, '')
    t.equal(unknown.stderr, `${program.name}: unknown option --bogus (see --help)\n`, 'one line naming the flag')
    t.equal(stray.code, 2, 'a stray argument: exit 2')
    t.equal(stray.stderr, `${program.name}: unexpected argument "stray" (see --help)\n`)
  })
}

t.test('admin:create: a missing --email value and a missing --email are usage errors, exit 2', async (t) => {
  const [noValue, noEmail] = await Promise.all([node('cli/admin-create.ts', ['--email']), node('cli/admin-create.ts', [])])
  t.equal(noValue.code, 2)
  t.equal(noValue.stderr, 'admin:create: --email needs a value (see --help)\n')
  t.equal(noEmail.code, 2)
  t.match(noEmail.stderr, /^admin:create: --email is required; usage: npm run admin:create -- --email <email>/)
  t.equal(noEmail.stderr.trim().split('\n').length, 1, 'one line')
})

t.test('`npm run admin:create -- --help`, as the issue ran it', { skip: fresh ? false : 'the build is not current (npm run build)' }, async (t) => {
  const result = await run('npm', ['run', '--silent', 'admin:create', '--', '--help'])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /^Usage: npm run admin:create -- --email <email>/)
  t.notMatch(result.stderr, /TypeError|at /, 'no stack')
})

t.test('the CLIs: ./.env is read, and an unreachable DATABASE_URL is one sentence and exit 1', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'token-auth-cli-'))
  t.teardown(() => rm(cwd, { recursive: true, force: true }))
  await writeFile(join(cwd, '.env'), `DATABASE_URL=postgresql://u:file-password@127.0.0.1:1/x\nSECRET_KEY=${'s'.repeat(48)}\n`)
  const environment = { PATH: process.env.PATH ?? '' }
  const [migrate, rotate, create] = await Promise.all([
    run(process.execPath, command('cli/migrate.ts'), { cwd, env: environment }),
    run(process.execPath, command('cli/rotate-keys.ts'), { cwd, env: { ...environment, DATABASE_URL: 'postgresql://u:env-password@127.0.0.1:2/x' } }),
    run(process.execPath, [...command('cli/admin-create.ts'), '--email', 'new@cli.test'], { cwd, env: environment }),
  ])
  for (const [label, result, port] of [['db:migrate', migrate, 1], ['keys:rotate', rotate, 2], ['admin:create', create, 1]] as const) {
    t.equal(result.code, 1, `${label}: exit 1`)
    const lines = result.stderr.trim().split('\n')
    t.match(lines[0], new RegExp(`^configuration: the environment and ${join(cwd, '.env').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `${label}: says it read .env`)
    t.equal(lines.length, 2, `${label}: then one line: ${result.stderr}`)
    t.match(lines[1], new RegExp(`^Cannot reach the database that DATABASE_URL names at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`), `${label}: the sentence`)
    t.notMatch(result.stdout + result.stderr, /password|s{48}/, `${label}: no password, no key`)
  }
})
