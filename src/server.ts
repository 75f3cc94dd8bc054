import { createRequire } from 'node:module'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import type { LoggerOptions } from 'pino'
import app, { serverOptions } from './app.js'
import { configOrExit, databaseProblem, describeEnvFile, parseCommandLine, readEnvFile, type CommandSpec, type OptionSpec } from './cli/command.js'
import { resolveSecretKey } from './secret-key.js'

const COMMAND = {
  name: 'server',
  usage: ['npm start', 'npm run dev          (restarts on changes to src/, readable logs)', 'node dist/src/server.js [--pretty]'],
  description:
    'Starts the token-auth service: migrates the database, then serves the API, the discovery documents, ' +
    'the OpenAPI document at /docs and the admin dashboard at /dashboard/ on HOST:PORT. ' +
    'SIGTERM or SIGINT finishes the requests in flight and exits 0.',
  options: {
    pretty: { type: 'boolean', description: 'readable log lines (pino-pretty, for development) instead of JSON' },
  },
  environment:
    'PORT, HOST, ISSUER, DATABASE_URL (unset: the embedded database in DATA_DIR), DATA_DIR, SECRET_KEY, REDIS_URL, ' +
    'SMTP_URL, LOG_LEVEL and more (the README describes each).',
} satisfies CommandSpec<Record<string, OptionSpec>>

/** pino-pretty as the logger's transport, or undefined (with a warning) where it is not installed: a production install. */
function prettyTransport (): LoggerOptions['transport'] {
  try {
    const target = createRequire(import.meta.url).resolve('pino-pretty')
    return { target, options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
  } catch {
    process.stderr.write('--pretty: pino-pretty is not installed (a development dependency); logging JSON\n')
    return undefined
  }
}

/** Starts the service: validated config, the app, graceful shutdown. */
async function main () {
  const { pretty } = parseCommandLine(COMMAND)
  const envFile = readEnvFile()
  const config = configOrExit()
  const { secretKey, generatedAt } = await resolveSecretKey(config)
  const options = serverOptions(config)
  // Only on request (npm run dev): production logs stay JSON, one object a line.
  const transport = pretty ? prettyTransport() : undefined
  if (transport) options.logger = { ...(options.logger as LoggerOptions), transport }
  const server = Fastify(options)
  const { details, message } = describeEnvFile(envFile)
  server.log.info(details, message)
  if (generatedAt) {
    server.log.warn({ path: generatedAt }, 'SECRET_KEY is not set: using a development key kept in DATA_DIR; set SECRET_KEY in production')
  }
  try {
    await server.register(fp(app), { config: { ...config, secretKey } })
  } catch (error) {
    // A database that cannot be reached or used: one sentence, not a stack.
    const problem = databaseProblem(error, config.databaseUrl)
    if (!problem) throw error
    process.stderr.write(`${problem}\n`)
    process.exit(1)
  }

  // SIGINT/SIGTERM, or a crash: stop taking requests (503 while closing), finish
  // the ones in flight, close the database; after 10 s, exit anyway.
  closeWithGrace({ delay: 10_000, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'shutting down after an error')
    else server.log.info({ signal }, 'shutting down')
    await server.close()
  })

  await server.listen({ port: config.port, host: config.host })
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
