import { maxAccessTokenTtlSeconds } from '../domain/clients.js'
import { deriveServerKeys } from '../domain/server-keys.js'
import { KeyStore } from '../domain/signing-keys.js'
import { resolveSecretKey } from '../secret-key.js'
import { runCli } from './database.js'

/**
 * npm run keys:rotate: publishes a new signing key now, which starts signing
 * after KEY_PUBLISH_LEAD_SECONDS; the current key retires then and stays in
 * the JWKS until every token it signed has expired.
 */
await runCli(async ({ config, db }) => {
  const { secretKey } = await resolveSecretKey(config)
  const store = new KeyStore(db, {
    encryptionKey: deriveServerKeys(secretKey).signingKeyEncryption,
    publishLeadSeconds: config.keyPublishLeadSeconds,
    maxAccessTokenTtlSeconds: maxAccessTokenTtlSeconds(config),
  })
  const { kid, activatesAt } = await store.rotate()
  console.log(`published key ${kid}; it signs from ${activatesAt.toISOString()}`)
})
