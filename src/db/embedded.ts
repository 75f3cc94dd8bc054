import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedDatabase {
  /** A postgres:// URL for pg and Prisma's pg adapter. */
  url: string
  stop(): Promise<void>
}

/**
 * Starts PGlite served over the Postgres wire protocol on loopback, so the
 * service reaches it through the same pg adapter as a real Postgres.
 * `dataDir` undefined keeps the database in memory (tests).
 * PGlite is single-process: a second process cannot open the same folder.
 */
export async function startEmbeddedDatabase(options: { dataDir?: string; port?: number } = {}): Promise<EmbeddedDatabase> {
  let db: PGlite
  if (options.dataDir) {
    const folder = join(options.dataDir, 'pgdata')
    await mkdir(folder, { recursive: true })
    db = await PGlite.create(folder)
  } else {
    db = await PGlite.create()
  }
  // The socket server serialises queries from its connections and keeps a
  // transaction's statements together; clients must still use one connection
  // at a time (pool max 1), see ENVIRONMENT.md.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: options.port ?? 0, maxConnections: 4 })
  await server.start()
  const url = `postgresql://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`
  return {
    url,
    async stop() {
      await server.stop()
      await db.close()
    },
  }
}
