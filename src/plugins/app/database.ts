import { PrismaPg } from '@prisma/adapter-pg'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../db/embedded.js'
import { migrate } from '../../db/migrate.js'
import { PrismaClient } from '../../generated/prisma/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: PrismaClient
    /** Checks that the database answers, within a bound. */
    databaseReachable(): Promise<boolean>
  }
}

/**
 * The database: the configured Postgres, or an embedded PGlite in DATA_DIR
 * when DATABASE_URL is unset; migrated at start, the same way in both cases.
 */
async function database(fastify: FastifyInstance) {
  const { config } = fastify
  let url = config.databaseUrl
  let poolMax = config.databasePoolMax
  let embedded: EmbeddedDatabase | undefined
  if (!url) {
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

  const adapter = new PrismaPg({
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
  const db = new PrismaClient({ adapter })
  fastify.decorate('db', db)
  fastify.decorate('databaseReachable', async () => {
    try {
      await db.$queryRaw`SELECT 1`
      return true
    } catch {
      return false
    }
  })
  fastify.addHook('onClose', async () => {
    await db.$disconnect()
    await embedded?.stop()
  })
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'postgres://<unparseable>'
  }
}

export default fp(database, { name: 'database', dependencies: ['config'] })
