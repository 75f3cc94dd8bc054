import { createHash, randomUUID } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { PROJECT_ROOT } from '../paths.js'

export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'prisma', 'migrations')

/** Prisma Migrate's own lock key, so this runner and `prisma migrate deploy` exclude each other. */
const PRISMA_ADVISORY_LOCK_KEY = 72707369

export interface Migration {
  name: string
  sql: string
  /** sha256 of the file, hex: what Prisma records in `_prisma_migrations.checksum`. */
  checksum: string
}

export interface MigrateResult {
  applied: string[]
  alreadyApplied: string[]
}

export class MigrationError extends Error {
  override name = 'MigrationError'
}

export async function readMigrations (dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(join(dir, name, 'migration.sql'))
      return { name, sql: bytes.toString('utf8'), checksum: createHash('sha256').update(bytes).digest('hex') }
    })
  )
}

// Prisma's definition of its bookkeeping table, so `prisma migrate status` on a
// connected machine reads what this runner wrote.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`

interface AppliedRow {
  migration_name: string
  checksum: string
  finished_at: Date | null
}

/**
 * Applies pending migrations, each in its own transaction, under Prisma's
 * advisory lock so concurrent starts migrate once. Refuses to run when an
 * applied migration's file changed, when the database knows a migration this
 * code does not, or when an earlier migration failed half-way.
 */
export async function migrate (
  connectionString: string,
  options: { dir?: string; log?: (message: string) => void } = {}
): Promise<MigrateResult> {
  const migrations = await readMigrations(options.dir)
  const log = options.log ?? (() => {})
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK_KEY])
    try {
      await client.query(CREATE_MIGRATIONS_TABLE)
      const { rows } = await client.query<AppliedRow>(
        `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations"
         WHERE rolled_back_at IS NULL ORDER BY started_at`
      )
      const known = new Map(migrations.map((m) => [m.name, m]))
      const applied = new Set<string>()
      for (const row of rows) {
        const migration = known.get(row.migration_name)
        if (!row.finished_at) {
          throw new MigrationError(
            `migration ${row.migration_name} started but did not finish; repair the database by hand, then mark it rolled back`
          )
        }
        if (!migration) {
          throw new MigrationError(`the database has migration ${row.migration_name}, which is not in ${options.dir ?? MIGRATIONS_DIR}`)
        }
        if (migration.checksum !== row.checksum) {
          throw new MigrationError(
            `checksum mismatch for migration ${row.migration_name}: the file was changed after it was applied ` +
              `(database ${row.checksum}, file ${migration.checksum}); add a new migration instead`
          )
        }
        applied.add(row.migration_name)
      }
      const result: MigrateResult = { applied: [], alreadyApplied: [...applied] }
      for (const migration of migrations) {
        if (applied.has(migration.name)) continue
        await client.query('BEGIN')
        try {
          const id = randomUUID()
          await client.query(
            'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())',
            [id, migration.checksum, migration.name]
          )
          await client.query(migration.sql)
          await client.query(
            'UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1',
            [id]
          )
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${(error as Error).message}`)
        }
        log(`applied migration ${migration.name}`)
        result.applied.push(migration.name)
      }
      return result
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY]).catch(() => {})
    }
  } finally {
    await client.end()
  }
}
