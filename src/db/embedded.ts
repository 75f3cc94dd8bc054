import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { preparePrivateDataDir } from '../data-dir.js'

export interface EmbeddedDatabase {
  /** A postgresql:// URL for pg and Prisma's pg adapter, naming the Unix-domain socket (`host` is its folder). */
  url: string
  /**
   * A tarball of the database's files (PGlite's dumpDataDir): what
   * `fromSnapshot` starts from. Tests start each database from one migrated
   * snapshot instead of running initdb and the migrations again.
   */
  snapshot(): Promise<Blob>
  stop(): Promise<void>
}

/** Written into DATA_DIR while a process serves the embedded database there. */
interface LockFile {
  pid: number
  /** Absent while the owner is still starting. */
  url?: string
}

export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError'
}

export class EmbeddedDatabaseBusyError extends EmbeddedDatabaseError {
  override name = 'EmbeddedDatabaseBusyError'
}

const LOCK_FILE = 'pgdata.lock'
/** pg connects to `<host>/.s.PGSQL.<port>` when host is a folder; the port only names the file. */
const SOCKET_PORT = 5432
const SOCKET_FILE = `.s.PGSQL.${SOCKET_PORT}`
/** sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS), the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103

/**
 * PGlite's memory is the service's: it runs in this process. Postgres's
 * defaults are sized for a server of its own; these fit a database of one
 * service (figures in the README's Database section). `shared_buffers` is
 * the page cache inside PGlite's WebAssembly memory, resident from the start;
 * misses are served by the operating system's file cache.
 */
const MEMORY_SETTINGS = ['shared_buffers=16MB']

/**
 * Starts PGlite served over the Postgres wire protocol on a Unix-domain
 * socket, so the service reaches it through the same pg adapter as a real
 * Postgres. `dataDir` undefined keeps the database in memory (tests).
 *
 * Only the owner of DATA_DIR reaches the database: pglite-socket accepts any
 * user and password, so it never listens on TCP (any local user, or any
 * process sharing the network namespace, could connect); the socket lives in
 * DATA_DIR, which is made owner-only (0700), and is itself 0600.
 *
 * PGlite is single-process: the folder is locked by a file naming the owner
 * and its URL, so a second process (a CLI) connects to the owner's socket
 * instead of opening the files beside it.
 */
export async function startEmbeddedDatabase (
  options: {
    dataDir?: string
    /** In memory only: start from this snapshot (a tarball made by `snapshot()`) instead of an empty cluster. */
    fromSnapshot?: Blob
  } = {}
): Promise<EmbeddedDatabase> {
  let lockPath: string | undefined
  let socketDir: string
  let db: PGlite
  if (options.dataDir) {
    socketDir = resolve(options.dataDir)
    checkSocketPath(socketDir)
    await preparePrivateDataDir(socketDir)
    lockPath = await acquireLock(socketDir)
    try {
      const pgdata = join(socketDir, 'pgdata')
      await initializeInChildProcess(pgdata)
      db = await PGlite.create(pgdata, { startParams: startParams() })
    } catch (error) {
      await rm(lockPath, { force: true })
      throw error
    }
  } else {
    // mkdtemp makes the folder 0700.
    socketDir = await mkdtemp(join(tmpdir(), 'pglite-'))
    checkSocketPath(socketDir)
    db = await PGlite.create({ startParams: startParams(), ...(options.fromSnapshot ? { loadDataDir: options.fromSnapshot } : {}) })
  }
  const socketPath = join(socketDir, SOCKET_FILE)
  let server: PGLiteSocketServer
  try {
    // A socket file left by a process that crashed; the lock (or the fresh
    // temporary folder) says nobody serves it.
    await rm(socketPath, { force: true })
    // The socket server runs one query at a time and keeps a transaction's
    // statements together, so several connections are safe; each blocks the
    // others while its transaction is open.
    server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 8 })
    await server.start()
    // Linux checks write permission on connect; the 0700 folder already shuts others out.
    await chmod(socketPath, 0o600)
  } catch (error) {
    await db.close()
    if (lockPath) await rm(lockPath, { force: true })
    else await rm(socketDir, { recursive: true, force: true })
    throw error
  }
  // pg takes the `host` parameter over the URL's host name; "localhost" only keeps the URL parseable by WHATWG URL.
  const url = `postgresql://postgres:postgres@localhost/postgres?host=${encodeURIComponent(socketDir)}&port=${SOCKET_PORT}&sslmode=disable`
  if (lockPath) await writeFile(lockPath, JSON.stringify({ pid: process.pid, url } satisfies LockFile), { mode: 0o600 })
  return {
    url,
    snapshot: () => db.dumpDataDir('none'),
    async stop () {
      await server.stop()
      await db.close()
      await rm(socketPath, { force: true })
      if (lockPath) await rm(lockPath, { force: true })
      else await rm(socketDir, { recursive: true, force: true })
    },
  }
}

function startParams (): string[] {
  return [...PGlite.defaultStartParams, ...MEMORY_SETTINGS.flatMap((setting) => ['-c', setting])]
}

function checkSocketPath (dir: string): void {
  const bytes = Buffer.byteLength(join(dir, SOCKET_FILE))
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new EmbeddedDatabaseError(
      `DATA_DIR ${dir} is too long for the embedded database's socket: ${join(dir, SOCKET_FILE)} is ${bytes} bytes, ` +
        `a Unix-domain socket path at most ${MAX_SOCKET_PATH_BYTES} bytes; choose a shorter DATA_DIR, or set DATABASE_URL`
    )
  }
}

const run = promisify(execFile)

/**
 * The first start of PGlite on an empty folder runs initdb, which takes two
 * more Postgres WebAssembly instances: about 600 MB that the garbage
 * collector returns late, if ever, to the operating system. In a short-lived
 * process of its own that memory ends with it, and the service opens an
 * initialized folder like any later start.
 */
async function initializeInChildProcess (pgdata: string): Promise<void> {
  if (await stat(join(pgdata, 'PG_VERSION')).then(() => true, () => false)) return
  // Plain CommonJS through -e: runs the same under tsx (tests) and from dist.
  const script = 'const { PGlite } = require(process.argv[1]); PGlite.create(process.argv[2]).then((db) => db.close())'
  try {
    await run(process.execPath, ['-e', script, createRequire(import.meta.url).resolve('@electric-sql/pglite'), pgdata], {
      env: { PATH: process.env.PATH ?? '' },
      maxBuffer: 16 * 1024 * 1024,
    })
  } catch (error) {
    const { stderr } = error as { stderr?: string }
    throw new EmbeddedDatabaseError(`could not create the embedded database in ${pgdata}: ${stderr?.trim() || (error as Error).message}`, { cause: error })
  }
}

/** Takes the folder's lock before PGlite opens any file in it; fails when a live process holds it. */
async function acquireLock (dataDir: string): Promise<string> {
  const lockPath = join(dataDir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, JSON.stringify({ pid: process.pid } satisfies LockFile), { flag: 'wx', mode: 0o600 })
      return lockPath
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const owner = await embeddedDatabaseOwner(dataDir)
    if (owner) {
      throw new EmbeddedDatabaseBusyError(
        `the embedded database in ${dataDir} is in use by process ${owner.pid}; stop it, or set DATABASE_URL`
      )
    }
    await rm(lockPath, { force: true }) // stale: its process is gone
  }
  throw new EmbeddedDatabaseBusyError(`could not lock the embedded database in ${dataDir}`)
}

/** The live process serving the embedded database in `dataDir`, if any. */
export async function embeddedDatabaseOwner (dataDir: string): Promise<LockFile | null> {
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
