import { buildLinksApp } from './app.js'
import { LinksConfigError, loadLinksConfig } from './config.js'

/** Starts the links service from environment variables (see config.ts and the README). */
async function main () {
  let config
  try {
    config = loadLinksConfig()
  } catch (error) {
    if (error instanceof LinksConfigError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
  }
  const app = await buildLinksApp(config)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down')
      app.close().then(
        () => process.exit(0),
        () => process.exit(1)
      )
    })
  }
  await app.listen({ port: config.port, host: config.host })
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
