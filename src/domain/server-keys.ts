import { createHmac, hkdfSync } from 'node:crypto'

/**
 * Keys derived from SECRET_KEY, one per purpose, so that no output of one use
 * (a token hash, say) can be replayed as another (an encryption key).
 */
export interface ServerKeys {
  refreshTokenHash: Buffer
  refreshTokenSuccessor: Buffer
  refreshTokenMac: Buffer
  apiKeyHash: Buffer
  signingKeyEncryption: Buffer
}

const PURPOSES: (keyof ServerKeys)[] = ['refreshTokenHash', 'refreshTokenSuccessor', 'refreshTokenMac', 'apiKeyHash', 'signingKeyEncryption']

export function deriveServerKeys (secretKey: string): ServerKeys {
  const keys = {} as ServerKeys
  for (const purpose of PURPOSES) {
    keys[purpose] = Buffer.from(hkdfSync('sha256', secretKey, 'token-auth/v1', purpose, 32))
  }
  return keys
}

export function hmacSha256 (key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}
