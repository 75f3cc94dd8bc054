import { PrismaPg } from '@prisma/adapter-pg'
import type { Config } from '../config.js'
import { embeddedDatabaseOwner, startEmbeddedDatabase } from '../db/embedded.js'
import { migrate } from '../db/migrate.js'
import { PrismaClient } from '../generated/prisma/client.js'
import { cliConfig, databaseProblem } from './command.js'

/**
 * The database a command-line tool should use: DATABASE_URL; else the
 * embedded database through the socket of the service that runs it (PGlite
 * allows one process per folder); else the embedded database opened here.
 */
export async function cliDatabase (config: Config): Promise<{ url: string; poolMax: number; close(): Promise<void> }> {
  if (config.databaseUrl) return { url: config.databaseUrl, poolMax: 2, close: async () => {} }
  // The owner writes its URL once its socket listens; give a starting service time.
  for (let waited = 0; waited < 60_000; waited += 250) {
    const owner = await embeddedDatabaseOwner(config.dataDir)
    if (!owner) break
    if (owner.url) return { url: owner.url, poolMax: 1, close: async () => {} }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  const embedded = await startEmbeddedDatabase({ dataDir: config.dataDir })
  return { url: embedded.url, poolMax: 1, close: () => embedded.stop() }
}

/**
 * Runs a command against the migrated database with a Prisma client; prints
 * the error's message (one sentence for a database it cannot reach) and sets
 * a failing exit code instead of a stack trace. The configuration is read
 * here (./.env, then the environment): parse the command line first, so that
 * --help works whatever the configuration.
 */
export async function runCli (command: (context: { config: Config; db: PrismaClient }) => Promise<void>): Promise<void> {
  const config = cliConfig()
  const database = await cliDatabase(config)
  const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url, max: database.poolMax }) })
  try {
    await migrate(database.url)
    await command({ config, db })
  } catch (error) {
    console.error(databaseProblem(error, config.databaseUrl) ?? (error as Error).message)
    process.exitCode = 1
  } finally {
    await db.$disconnect()
    await database.close()
  }
}
