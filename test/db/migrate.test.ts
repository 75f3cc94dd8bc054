import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { MIGRATIONS_DIR, MigrationError, migrate, type MigrateResult } from '../../src/db/migrate.js'
import { createTestDatabase, realPostgresUrl, withClient, type TestDatabase } from '../helpers/database.js'
import { findSchemaDrift, loadDatamodel } from '../helpers/schema-drift.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Prisma Migrate's advisory lock key; the runner must take the same one so the two exclude each other. */
const PRISMA_ADVISORY_LOCK_KEY = 72707369

interface MigrationRow {
  id: string
  checksum: string
  finished_at: Date | null
  migration_name: string
  logs: string | null
  rolled_back_at: Date | null
  started_at: Date
  applied_steps_count: number
}

/** The migration folders, and each file's sha256 computed here rather than by the runner. */
async function migrationFiles (dir = MIGRATIONS_DIR): Promise<{ name: string; checksum: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
  return Promise.all(
    names.map(async (name) => ({
      name,
      checksum: createHash('sha256').update(await readFile(join(dir, name, 'migration.sql'))).digest('hex'),
    }))
  )
}

async function migrationRows (url: string): Promise<MigrationRow[]> {
  return withClient(url, async (c) => (await c.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name')).rows)
}

// One database for the file: an embedded PGlite costs about 2 s of CPU to
// start, so each test empties this one instead of creating its own.
const db: TestDatabase = await createTestDatabase({ migrated: false })
t.teardown(() => db.drop())

/** The file's database with nothing in it: no tables, types or `_prisma_migrations`. */
async function emptyDatabase (): Promise<void> {
  await withClient(db.url, (c) => c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'))
}

/** A scratch copy of prisma/migrations, removed when the test ends. */
async function migrationsCopy (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(MIGRATIONS_DIR, dir, { recursive: true })
  return dir
}

async function addMigration (dir: string, name: string, sql: string): Promise<void> {
  await mkdir(join(dir, name))
  await writeFile(join(dir, name, 'migration.sql'), sql)
}

/** Awaits a migrate() that must fail, and returns its MigrationError. */
async function migrationError (t: Test, run: Promise<MigrateResult>): Promise<MigrationError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e
  )
  t.type(error, MigrationError, 'migrate() fails with a MigrationError')
  return error as MigrationError
}

t.test('applies every migration to an empty database and records it as Prisma does', async (t) => {
  await emptyDatabase()
  const files = await migrationFiles()
  t.ok(files.length > 0, 'there are migrations')

  const first = await migrate(db.url)
  t.strictSame(first, { applied: files.map((f) => f.name), alreadyApplied: [] })

  const rows = await migrationRows(db.url)
  t.equal(rows.length, files.length, 'one _prisma_migrations row per migration')
  for (const [i, file] of files.entries()) {
    const row = rows[i]
    if (!row) continue
    t.equal(row.migration_name, file.name, `${file.name}: recorded in order`)
    t.equal(row.checksum, file.checksum, `${file.name}: checksum is the sha256 of migration.sql`)
    t.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `${file.name}: id is a UUID`)
    t.type(row.finished_at, Date, `${file.name}: finished_at is set`)
    t.ok(row.finished_at && row.finished_at >= row.started_at, `${file.name}: finished after it started`)
    t.equal(row.applied_steps_count, 1, `${file.name}: applied_steps_count 1`)
    t.equal(row.rolled_back_at, null, `${file.name}: not rolled back`)
    t.equal(row.logs, null, `${file.name}: no logs`)
  }

  // The bookkeeping table must be Prisma's own, so `prisma migrate status`
  // on a connected machine reads what the runner wrote.
  const columns = await withClient(db.url, async (c) =>
    (
      await c.query<{ name: string; type: string; nullable: string; default: string | null }>(
        `SELECT column_name AS name,
                data_type || coalesce('(' || character_maximum_length || ')', '') AS type,
                is_nullable AS nullable, column_default AS default
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = '_prisma_migrations' ORDER BY ordinal_position`
      )
    ).rows
  )
  t.strictSame(columns, [
    { name: 'id', type: 'character varying(36)', nullable: 'NO', default: null },
    { name: 'checksum', type: 'character varying(64)', nullable: 'NO', default: null },
    { name: 'finished_at', type: 'timestamp with time zone', nullable: 'YES', default: null },
    { name: 'migration_name', type: 'character varying(255)', nullable: 'NO', default: null },
    { name: 'logs', type: 'text', nullable: 'YES', default: null },
    { name: 'rolled_back_at', type: 'timestamp with time zone', nullable: 'YES', default: null },
    { name: 'started_at', type: 'timestamp with time zone', nullable: 'NO', default: 'now()' },
    { name: 'applied_steps_count', type: 'integer', nullable: 'NO', default: '0' },
  ])

  t.test('running again applies nothing', async (t) => {
    const second = await migrate(db.url)
    t.strictSame(second, { applied: [], alreadyApplied: files.map((f) => f.name) })
    t.strictSame(await migrationRows(db.url), rows, '_prisma_migrations is unchanged')
  })
})

t.test('refuses to run when an applied migration file was changed', async (t) => {
  await emptyDatabase()
  const dir = await migrationsCopy(t)
  await migrate(db.url, { dir })
  const before = await migrationRows(db.url)
  const [first] = await migrationFiles(dir)
  if (!first) throw new Error('no migrations')

  await appendFile(join(dir, first.name, 'migration.sql'), '\n-- edited after it was applied\n')
  const [edited] = await migrationFiles(dir)
  const error = await migrationError(t, migrate(db.url, { dir }))
  t.match(error.message, `checksum mismatch for migration ${first.name}`)
  t.match(error.message, first.checksum, 'names the checksum the database recorded')
  t.match(error.message, edited?.checksum ?? '?', 'and the checksum of the file now')
  t.strictSame(await migrationRows(db.url), before, '_prisma_migrations is unchanged')
})

t.test('refuses a database that has a migration this code does not know', async (t) => {
  await emptyDatabase()
  const dir = await migrationsCopy(t)
  await addMigration(dir, '29991231000000_from_the_future', 'CREATE TABLE "future" ("id" INTEGER);\n')
  await migrate(db.url, { dir })
  const error = await migrationError(t, migrate(db.url))
  t.match(error.message, 'the database has migration 29991231000000_from_the_future')
})

t.test('refuses to continue after a migration that started but did not finish', async (t) => {
  await emptyDatabase()
  await migrate(db.url)
  // What a crashed `prisma migrate deploy` leaves behind: a row without finished_at.
  await withClient(db.url, (c) =>
    c.query(
      'INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES (\'00000000-0000-4000-8000-000000000000\', $1, \'x\')',
      ['0'.repeat(64)]
    )
  )
  const error = await migrationError(t, migrate(db.url))
  t.match(error.message, 'migration x started but did not finish')
})

t.test('a failing migration is rolled back and leaves nothing half-written', async (t) => {
  await emptyDatabase()
  const dir = await migrationsCopy(t)
  const files = await migrationFiles()
  const broken = '29991231000000_broken'
  // Two statements that succeed, then one that fails: all three must vanish.
  await addMigration(
    dir,
    broken,
    `CREATE TABLE "half_written" ("id" INTEGER);
ALTER TABLE "users" ADD COLUMN "half_written" INTEGER;
INSERT INTO "no_such_table" VALUES (1);
`
  )

  const error = await migrationError(t, migrate(db.url, { dir }))
  t.match(error.message, `migration ${broken} failed and was rolled back`)
  t.match(error.message, 'no_such_table', "carries Postgres' reason")

  const rows = await migrationRows(db.url)
  t.strictSame(
    rows.map((r) => [r.migration_name, r.finished_at !== null]),
    files.map((f) => [f.name, true]),
    'the migrations before it are applied and recorded; the failed one has no row'
  )
  await withClient(db.url, async (c) => {
    const drift = await findSchemaDrift(c, await loadDatamodel())
    t.strictSame(drift, [], 'the schema is exactly the one before the failed migration')
    const table = await c.query('SELECT to_regclass(\'public.half_written\') AS t')
    t.equal(table.rows[0]?.t, null, 'its table was not created')
  })

  // Nothing blocks a corrected migration: no unfinished row was left behind.
  await writeFile(join(dir, broken, 'migration.sql'), 'SELECT 1;\n')
  const retry = await migrate(db.url, { dir })
  t.strictSame(retry.applied, [broken], 'the corrected migration applies on the next run')
})

t.test(
  'two processes migrating one empty database at once migrate it exactly once',
  { skip: realPostgresUrl ? false : 'needs a real Postgres (TEST_DATABASE_URL): embedded PGlite serves one process' },
  async (t) => {
    await emptyDatabase()
    const files = await migrationFiles()

    // Hold Prisma's lock while both processes start, so that both are provably
    // waiting on it at the same moment; then let them race for it.
    await withClient(db.url, async (gate) => {
      await gate.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK_KEY])
      const children = [runMigrateProcess(db.url), runMigrateProcess(db.url)]
      try {
        const deadline = Date.now() + 30_000
        for (;;) {
          const { rows } = await gate.query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_locks
             WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = $1
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
            [PRISMA_ADVISORY_LOCK_KEY]
          )
          if (rows[0]?.waiting === 2) break
          if (Date.now() > deadline) throw new Error(`only ${rows[0]?.waiting ?? 0} of 2 processes reached the migration lock`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        t.pass('both processes are waiting on the migration lock')
      } finally {
        await gate.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY])
      }
      const results = await Promise.all(children)
      for (const [i, r] of results.entries()) t.equal(r.code, 0, `process ${i + 1} exits 0${r.stderr ? `: ${r.stderr}` : ''}`)
      const outcomes = results.map((r) => JSON.parse(r.stdout) as MigrateResult)
      const names = files.map((f) => f.name)
      const winner = outcomes.filter((o) => o.applied.length > 0)
      t.equal(winner.length, 1, 'one process applied the migrations')
      t.strictSame(winner[0]?.applied, names, 'all of them')
      const other = outcomes.find((o) => o.applied.length === 0)
      t.strictSame(other, { applied: [], alreadyApplied: names }, 'the other found them applied')
    })

    const rows = await migrationRows(db.url)
    t.strictSame(
      rows.map((r) => r.migration_name),
      files.map((f) => f.name),
      'one _prisma_migrations row per migration'
    )
  }
)

function runMigrateProcess (url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/migrate-process.ts', url], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
