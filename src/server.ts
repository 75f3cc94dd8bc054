import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app, { serverOptions } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { resolveSecretKey } from './secret-key.js'

/** Starts the service: validated config, the app, graceful shutdown. */
async function main() {
  let config
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
  }
  const { secretKey, generatedAt } = await resolveSecretKey(config)
  const server = Fastify(serverOptions(config))
  if (generatedAt) {
    server.log.warn({ path: generatedAt }, 'SECRET_KEY is not set: using a development key kept in DATA_DIR; set SECRET_KEY in production')
  }
  await server.register(fp(app), { config: { ...config, secretKey } })

  let closing = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (closing) return
      closing = true
      server.log.info({ signal }, 'shutting down')
      const force = setTimeout(() => {
        server.log.error('shutdown took over 10 s; exiting')
        process.exit(1)
      }, 10_000)
      force.unref()
      server.close().then(
        () => process.exit(0),
        (error: unknown) => {
          server.log.error({ err: error }, 'error while shutting down')
          process.exit(1)
        },
      )
    })
  }

  await server.listen({ port: config.port, host: config.host })
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
