import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedDatabase {
  /** A postgres:// URL for pg and Prisma's pg adapter. */
  url: string
  stop(): Promise<void>
}

/** Written into DATA_DIR while a process serves the embedded database there. */
interface LockFile {
  pid: number
  /** Absent while the owner is still starting. */
  url?: string
}

export class EmbeddedDatabaseBusyError extends Error {
  override name = 'EmbeddedDatabaseBusyError'
}

const LOCK_FILE = 'pgdata.lock'

/**
 * Starts PGlite served over the Postgres wire protocol on loopback, so the
 * service reaches it through the same pg adapter as a real Postgres.
 * `dataDir` undefined keeps the database in memory (tests).
 *
 * PGlite is single-process: the folder is locked by a file naming the owner
 * and its URL, so a second process (a CLI) connects to the owner's socket
 * instead of opening the files beside it.
 */
export async function startEmbeddedDatabase(options: { dataDir?: string; port?: number } = {}): Promise<EmbeddedDatabase> {
  let lockPath: string | undefined
  let db: PGlite
  if (options.dataDir) {
    await mkdir(options.dataDir, { recursive: true })
    lockPath = await acquireLock(options.dataDir)
    try {
      db = await PGlite.create(join(options.dataDir, 'pgdata'))
    } catch (error) {
      await rm(lockPath, { force: true })
      throw error
    }
  } else {
    db = await PGlite.create()
  }
  // The socket server runs one query at a time and keeps a transaction's
  // statements together, so several connections are safe; each blocks the
  // others while its transaction is open.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port ?? 0, maxConnections: 8 })
  await server.start()
  const url = `postgresql://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`
  if (lockPath) await writeFile(lockPath, JSON.stringify({ pid: process.pid, url } satisfies LockFile))
  return {
    url,
    async stop() {
      await server.stop()
      await db.close()
      if (lockPath) await rm(lockPath, { force: true })
    },
  }
}

/** Takes the folder's lock before PGlite opens any file in it; fails when a live process holds it. */
async function acquireLock(dataDir: string): Promise<string> {
  const lockPath = join(dataDir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, JSON.stringify({ pid: process.pid } satisfies LockFile), { flag: 'wx' })
      return lockPath
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = await embeddedDatabaseOwner(dataDir)
    if (owner) {
      throw new EmbeddedDatabaseBusyError(
        `the embedded database in ${dataDir} is in use by process ${owner.pid}; stop it, or set DATABASE_URL`,
      )
    }
    await rm(lockPath, { force: true }) // stale: its process is gone
  }
  throw new EmbeddedDatabaseBusyError(`could not lock the embedded database in ${dataDir}`)
}

/** The live process serving the embedded database in `dataDir`, if any. */
export async function embeddedDatabaseOwner(dataDir: string): Promise<LockFile | null> {
  let lock: LockFile
  try {
    lock = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8')) as LockFile
  } catch {
    return null
  }
  if (lock.pid === process.pid) return lock
  try {
    process.kill(lock.pid, 0)
    return lock
  } catch (error) {
    // EPERM: alive but another user's; ESRCH: gone, the lock is stale.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? lock : null
  }
}
