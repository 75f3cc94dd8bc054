import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import pg from 'pg'

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)
/** The links service's own advisory-lock key: concurrent starts migrate once. */
const LOCK_KEY = 0x11e4c5

export class LinksMigrationError extends Error {
  override name = 'LinksMigrationError'
}

/**
 * Applies `migrations/*.sql` in name order, each once and in its own
 * transaction, recorded in links_schema_migrations with its sha256. An
 * applied migration whose file changed stops the start.
 */
export async function migrateLinks (pool: pg.Pool): Promise<string[]> {
  const names = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort()
  const client = await pool.connect()
  const applied: string[] = []
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY])
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS links_schema_migrations (
        name text PRIMARY KEY,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`)
      const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM links_schema_migrations')
      const done = new Map(rows.map((row) => [row.name, row.checksum]))
      for (const name of names) {
        const sql = await readFile(new URL(name, MIGRATIONS_DIR), 'utf8')
        const checksum = createHash('sha256').update(sql).digest('hex')
        const recorded = done.get(name)
        if (recorded !== undefined) {
          if (recorded !== checksum) throw new LinksMigrationError(`migration ${name} changed after it was applied`)
          continue
        }
        await client.query('BEGIN')
        try {
          await client.query(sql)
          await client.query('INSERT INTO links_schema_migrations (name, checksum) VALUES ($1, $2)', [name, checksum])
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK')
          throw error
        }
        applied.push(name)
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY])
    }
  } finally {
    client.release()
  }
  return applied
}
