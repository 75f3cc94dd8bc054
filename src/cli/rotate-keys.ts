import { PrismaPg } from '@prisma/adapter-pg'
import { loadConfig } from '../config.js'
import { migrate } from '../db/migrate.js'
import { maxAccessTokenTtlSeconds } from '../domain/clients.js'
import { deriveServerKeys } from '../domain/server-keys.js'
import { KeyStore } from '../domain/signing-keys.js'
import { PrismaClient } from '../generated/prisma/client.js'
import { resolveSecretKey } from '../secret-key.js'
import { cliDatabase } from './database.js'

/**
 * npm run keys:rotate: publishes a new signing key now, which starts signing
 * after KEY_PUBLISH_LEAD_SECONDS; the current key retires then and stays in
 * the JWKS until every token it signed has expired.
 */
const config = loadConfig()
const { secretKey } = await resolveSecretKey(config)
const database = await cliDatabase(config)
const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url, max: database.poolMax }) })
try {
  await migrate(database.url)
  const store = new KeyStore(db, {
    encryptionKey: deriveServerKeys(secretKey).signingKeyEncryption,
    publishLeadSeconds: config.keyPublishLeadSeconds,
    maxAccessTokenTtlSeconds: maxAccessTokenTtlSeconds(config),
  })
  const { kid, activatesAt } = await store.rotate()
  console.log(`published key ${kid}; it signs from ${activatesAt.toISOString()}`)
} catch (error) {
  console.error((error as Error).message)
  process.exitCode = 1
} finally {
  await db.$disconnect()
  await database.close()
}
