import { loadConfig } from '../config.js'
import { migrate } from '../db/migrate.js'
import { cliDatabase } from './database.js'

/** npm run db:migrate: applies pending migrations to DATABASE_URL or the embedded database. */
const config = loadConfig()
const database = await cliDatabase(config)
try {
  const result = await migrate(database.url, { log: (message) => console.log(message) })
  console.log(`migrations: ${result.applied.length} applied, ${result.alreadyApplied.length} already applied`)
} catch (error) {
  console.error((error as Error).message)
  process.exitCode = 1
} finally {
  await database.close()
}
