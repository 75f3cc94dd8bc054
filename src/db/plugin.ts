import { PrismaPg } from '@prisma/adapter-pg'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import pg from 'pg'
import type { EmbeddedDatabase } from './embedded.js'
import { migrate } from './migrate.js'
import { statementPool, type SqlPool } from './sql-pool.js'
import { PrismaClient } from '../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: PrismaClient
    /**
     * The connection pool under `db`, for the hot statements that are raw SQL
     * anyway (refresh rotation): pg directly skips Prisma's per-query work and
     * can name (prepare) a statement. One pool, so the connection limit holds
     * for both.
     */
    sql: SqlPool
    /**
     * The background workers' client (the outbox deliveries): on Postgres a
     * pool of its own, so a flood of requests waiting for connections never
     * delays a delivery's claim or its outcome (events stay fresh under
     * load); on the embedded database (or any DATABASE_POOL_MAX of 1), its
     * one connection, shared (`db`).
     */
    workerDb: PrismaClient
    /** Checks that the database answers, within a bound. */
    databaseReachable(): Promise<boolean>
  }
}

/** Connections of the background workers' own pool (Postgres only), beside DATABASE_POOL_MAX's. */
const WORKER_POOL_MAX = 2

/**
 * The database: the configured Postgres, or an embedded PGlite in DATA_DIR
 * when DATABASE_URL is unset; migrated at start, the same way in both cases.
 */
async function database (fastify: FastifyInstance) {
  const { config } = fastify
  let url = config.databaseUrl
  let poolMax = config.databasePoolMax
  let embedded: EmbeddedDatabase | undefined
  if (!url) {
    // Loaded only here: PGlite's modules cost a Postgres deployment ~8 MB of memory for nothing.
    const { startEmbeddedDatabase } = await import('./embedded.js')
    embedded = await startEmbeddedDatabase({ dataDir: config.dataDir })
    url = embedded.url
    // The embedded server runs one connection's queries at a time.
    poolMax = 1
    fastify.log.warn({ dataDir: config.dataDir }, 'database: embedded PGlite (single process; set DATABASE_URL for Postgres)')
  } else {
    fastify.log.info({ database: redactUrl(url) }, 'database: PostgreSQL')
  }
  const result = await migrate(url, { log: (message) => fastify.log.info(message) }).catch(async (error: unknown) => {
    await embedded?.stop()
    throw error
  })
  fastify.log.info({ applied: result.applied.length, alreadyApplied: result.alreadyApplied.length }, 'migrations up to date')

  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    // Fail fast when the database is gone so requests get 503 instead of hanging.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // Shorter than the refresh grace window (10 s by default): a client whose
    // refresh committed but whose answer was lost gets its 503 and can retry
    // inside the window, receiving the same successor instead of tripping
    // reuse detection.
    query_timeout: 5_000,
  })
  // An idle connection that breaks (database restart) must not crash the process.
  pool.on('error', (error) => fastify.log.warn({ err: error }, 'database: idle connection failed'))
  const db = new PrismaClient({ adapter: new PrismaPg(pool) })
  fastify.decorate('db', db)
  // A database served one connection at a time (the embedded one, DATABASE_POOL_MAX=1) is shared.
  const workerPool = embedded || poolMax <= 1
    ? undefined
    : new pg.Pool({ connectionString: url, max: WORKER_POOL_MAX, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000, query_timeout: 15_000 })
  workerPool?.on('error', (error) => fastify.log.warn({ err: error }, 'database: idle worker connection failed'))
  const workerDb = workerPool ? new PrismaClient({ adapter: new PrismaPg(workerPool) }) : db
  fastify.decorate('workerDb', workerDb)
  // The embedded server is one backend session behind all its connections,
  // so it cannot keep prepared statements per connection: unnamed there.
  const sql = statementPool(pool, {
    named: !embedded,
    onUnnamed: (error) => fastify.log.warn({ err: error }, 'database: the server does not keep prepared statements per connection; hot statements run unnamed'),
  })
  fastify.decorate('sql', sql)
  fastify.decorate('databaseReachable', async () => {
    try {
      await db.$queryRaw`SELECT 1`
      return true
    } catch {
      return false
    }
  })
  fastify.addHook('onClose', async () => {
    if (workerPool) {
      await workerDb.$disconnect()
      await workerPool.end()
    }
    await db.$disconnect()
    await pool.end()
    await embedded?.stop()
  })
}

function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'postgres://<unparseable>'
  }
}

export default fp(database, { name: 'database', dependencies: ['config'] })
