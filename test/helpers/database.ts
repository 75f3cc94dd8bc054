import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.js'
import { migrate, readMigrations } from '../../src/db/migrate.js'

/**
 * Databases for tests. Every test file gets its own database, so files run in
 * parallel without seeing each other's rows.
 *
 * - TEST_DATABASE_URL set (a real Postgres; the URL names a maintenance
 *   database such as `postgres`, and its user may create databases): each call
 *   clones a migrated template with `CREATE DATABASE … TEMPLATE`, which takes
 *   milliseconds, instead of running the migrations again.
 * - TEST_DATABASE_URL unset: each call starts its own in-memory PGlite served
 *   on a Unix-domain socket in a private temporary folder (the embedded
 *   default of the service) and migrates it.
 */
export interface TestDatabase {
  url: string
  /** The pg pool size the database supports: the PGlite socket serves one connection at a time. */
  poolMax: number
  /** Removes the database. Safe to call more than once. */
  drop(): Promise<void>
}

export interface TestDatabaseOptions {
  /** false: an empty database (no tables, no `_prisma_migrations`), for migration tests. Default true. */
  migrated?: boolean
}

/** Whether tests run on a real Postgres (TEST_DATABASE_URL) rather than the embedded PGlite. */
export const realPostgresUrl: string | undefined = process.env.TEST_DATABASE_URL || undefined

export async function createTestDatabase (options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const migrated = options.migrated ?? true
  return realPostgresUrl ? createPostgresDatabase(realPostgresUrl, migrated) : createEmbeddedDatabase(migrated)
}

async function createEmbeddedDatabase (migrated: boolean): Promise<TestDatabase> {
  const snapshot = migrated ? await migratedSnapshot() : undefined
  const db = await startEmbeddedDatabase(snapshot ? { fromSnapshot: snapshot } : {})
  try {
    if (migrated && !snapshot) await saveMigratedSnapshot(db)
  } catch (error) {
    await db.stop()
    throw error
  }
  let dropped = false
  return {
    url: db.url,
    poolMax: 1,
    async drop () {
      if (dropped) return
      dropped = true
      await db.stop()
    },
  }
}

/**
 * The embedded twin of the Postgres template: one migrated PGlite cluster,
 * saved as a tarball in the temporary folder under a name that carries the
 * migrations' and PGlite's versions, from which every later test file starts
 * (about 1 s) instead of running initdb and the migrations (about 5 s).
 */
async function snapshotPath (): Promise<string> {
  const hash = createHash('sha256').update(`pglite ${PGLITE_VERSION}\n`)
  for (const m of await readMigrations()) hash.update(`${m.name}\0${m.checksum}\n`)
  return join(tmpdir(), `${NAME_PREFIX}_pglite_${hash.digest('hex').slice(0, 16)}.tar`)
}

async function migratedSnapshot (): Promise<Blob | undefined> {
  try {
    return new Blob([await readFile(await snapshotPath())])
  } catch {
    return undefined
  }
}

/** Migrates a fresh database and keeps its snapshot for the next files; written whole, then renamed. */
async function saveMigratedSnapshot (db: EmbeddedDatabase): Promise<void> {
  await migrate(db.url)
  const path = await snapshotPath()
  const partial = `${path}.${process.pid}.partial`
  await writeFile(partial, Buffer.from(await (await db.snapshot()).arrayBuffer()))
  await rename(partial, path)
}

/** PGlite's version: a snapshot is loaded only by the PGlite that made it (its package.json is not exported). */
const PGLITE_VERSION = (
  JSON.parse(readFileSync(join(dirname(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'))), 'package.json'), 'utf8')) as {
    version: string
  }
).version

/** Names of the databases this helper creates; they all start with it, so stale ones are easy to find. */
const NAME_PREFIX = 'tokenauth_test'

// Key of the advisory lock that serialises template builds across test
// processes. Distinct from Prisma Migrate's key, which migrate() takes inside
// the template itself.
const TEMPLATE_LOCK_KEY = 0x7e57db

async function createPostgresDatabase (adminUrl: string, migrated: boolean): Promise<TestDatabase> {
  const name = `${NAME_PREFIX}_${process.pid}_${randomBytes(6).toString('hex')}`
  await withClient(adminUrl, async (admin) => {
    if (migrated) {
      const template = await ensureTemplate(admin, adminUrl)
      await admin.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)}`)
    } else {
      // template0 is guaranteed empty, whatever someone installed into template1.
      await admin.query(`CREATE DATABASE ${ident(name)} TEMPLATE template0`)
    }
  })
  let dropped = false
  return {
    url: databaseUrl(adminUrl, name),
    poolMax: 10,
    async drop () {
      if (dropped) return
      dropped = true
      // FORCE ends connections a test left open (a pool not yet ended, a child process).
      await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`))
    },
  }
}

/**
 * Returns the name of a migrated template database, building it if needed.
 * The name carries a hash of every migration's name and checksum: a new or
 * edited migration gets a new template, never a stale one.
 */
async function ensureTemplate (admin: pg.Client, adminUrl: string): Promise<string> {
  const migrations = await readMigrations()
  const hash = createHash('sha256')
  for (const m of migrations) hash.update(`${m.name}\0${m.checksum}\n`)
  const template = `${NAME_PREFIX}_tpl_${hash.digest('hex').slice(0, 16)}`
  const exists = async (db: string) =>
    (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 1

  // Cheap check first: once built, the template is never modified.
  if (await exists(template)) return template
  await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY])
  try {
    if (await exists(template)) return template // another test file built it while we waited
    // Build under a scratch name and rename at the end: a process killed
    // half-way leaves a scratch database (dropped by the next build), never a
    // half-migrated template.
    const scratch = `${template}_building`
    await admin.query(`DROP DATABASE IF EXISTS ${ident(scratch)} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${ident(scratch)} TEMPLATE template0`)
    await migrate(databaseUrl(adminUrl, scratch))
    // migrate() has closed its connection; RENAME waits (up to 5 s) for the
    // server to notice, as CREATE DATABASE … TEMPLATE does.
    await admin.query(`ALTER DATABASE ${ident(scratch)} RENAME TO ${ident(template)}`)
    return template
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY])
  }
}

/** The URL of database `name` on the same server, user and options as `url`. */
export function databaseUrl (url: string, name: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${encodeURIComponent(name)}`
  return parsed.toString()
}

/** Quotes an SQL identifier. */
export function ident (name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** Runs `fn` with a connected pg client on `url`, and closes it afterwards. */
export async function withClient<T> (url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A pg pool sized for the test database (max 1 on PGlite); the caller ends it. */
export function openPool (db: Pick<TestDatabase, 'url' | 'poolMax'>): pg.Pool {
  return new pg.Pool({ connectionString: db.url, max: db.poolMax })
}
