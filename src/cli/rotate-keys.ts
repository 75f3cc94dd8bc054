import { maxAccessTokenTtlSeconds } from '../features/tokens/clients.js'
import { deriveKeys } from '../shared/derived-keys.js'
import { KeyStore } from '../features/signing-keys/signing-keys.js'
import { resolveSecretKey } from '../secret-key.js'
import { parseCommandLine } from './command.js'
import { runCli } from './database.js'

/**
 * npm run keys:rotate: publishes a new signing key now, which starts signing
 * after KEY_PUBLISH_LEAD_SECONDS; the current key retires then and stays in
 * the JWKS until every token it signed has expired.
 */
parseCommandLine({
  name: 'keys:rotate',
  usage: ['npm run keys:rotate', 'node dist/src/cli/rotate-keys.js'],
  description:
    'Publishes a new signing key now. It starts signing after KEY_PUBLISH_LEAD_SECONDS, when the current key retires; ' +
    'a retired key stays in the JWKS until every token it signed has expired. Safe while the service runs: ' +
    'every instance reads the keys from the database.',
  options: {},
  environment:
    'DATABASE_URL (unset: the embedded database in DATA_DIR, through the running service when it runs), DATA_DIR, ' +
    'SECRET_KEY (encrypts the private keys), KEY_PUBLISH_LEAD_SECONDS and the access-token lifetimes.',
})
await runCli(async ({ config, db }) => {
  const { secretKey } = await resolveSecretKey(config)
  const store = new KeyStore(db, {
    encryptionKey: deriveKeys(secretKey).signingKeyEncryption,
    publishLeadSeconds: config.keyPublishLeadSeconds,
    maxAccessTokenTtlSeconds: maxAccessTokenTtlSeconds(config),
  })
  const { kid, activatesAt } = await store.rotate()
  console.log(`published key ${kid}; it signs from ${activatesAt.toISOString()}`)
})
