import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import app, { serverOptions } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { resolveSecretKey } from './secret-key.js'

/** Starts the service: validated config, the app, graceful shutdown. */
async function main () {
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
