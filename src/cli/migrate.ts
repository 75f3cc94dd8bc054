import { migrate } from '../db/migrate.js'
import { cliConfig, databaseProblem, parseCommandLine } from './command.js'
import { cliDatabase } from './database.js'

/** npm run db:migrate: applies pending migrations to DATABASE_URL or the embedded database. */
parseCommandLine({
  name: 'db:migrate',
  usage: ['npm run db:migrate', 'node dist/src/cli/migrate.js'],
  description:
    'Applies the pending migrations of prisma/migrations and records each in _prisma_migrations, as ' +
    '`prisma migrate deploy` would. The service does the same at every start; this runs it alone, before a deploy for instance.',
  options: {},
  environment: 'DATABASE_URL (unset: the embedded database in DATA_DIR), DATA_DIR.',
})
const config = cliConfig()
const database = await cliDatabase(config)
try {
  const result = await migrate(database.url, { log: (message) => console.log(message) })
  console.log(`migrations: ${result.applied.length} applied, ${result.alreadyApplied.length} already applied`)
} catch (error) {
  console.error(databaseProblem(error, config.databaseUrl) ?? (error as Error).message)
  process.exitCode = 1
} finally {
  await database.close()
}
