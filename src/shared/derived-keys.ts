import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'

/**
 * Keys derived from SECRET_KEY, one per purpose, so that no output of one use
 * (a token hash, say) can be replayed as another (an encryption key).
 */
export interface DerivedKeys {
  refreshTokenHash: Buffer
  refreshTokenSuccessor: Buffer
  refreshTokenMac: Buffer
  apiKeyHash: Buffer
  signingKeyEncryption: Buffer
  /** Keys the hashes of password-reset and email-verification secrets (account_tokens). */
  accountTokenHash: Buffer
  /** Encrypts the secret an outbox message carries until it is sent. */
  outboxSecretEncryption: Buffer
  /** Encrypts TOTP secrets at rest (totp_factors, bound to the user id). */
  totpSecretEncryption: Buffer
  /** Keys the hashes of recovery codes. */
  recoveryCodeHash: Buffer
  /** Keys the hashes of mfa_tokens and of the password hash each one remembers. */
  mfaTokenHash: Buffer
  /** Keys the hashes of WebAuthn challenges (webauthn_challenges). */
  webauthnChallengeHash: Buffer
}

const PURPOSES: (keyof DerivedKeys)[] = [
  'refreshTokenHash',
  'refreshTokenSuccessor',
  'refreshTokenMac',
  'apiKeyHash',
  'signingKeyEncryption',
  'accountTokenHash',
  'outboxSecretEncryption',
  'totpSecretEncryption',
  'recoveryCodeHash',
  'mfaTokenHash',
  'webauthnChallengeHash',
]

export function deriveKeys (secretKey: string): DerivedKeys {
  const keys = {} as DerivedKeys
  for (const purpose of PURPOSES) {
    keys[purpose] = Buffer.from(hkdfSync('sha256', secretKey, 'token-auth/v1', purpose, 32))
  }
  return keys
}

export function hmacSha256 (key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

/**
 * AES-256-GCM: iv (12 bytes) || ciphertext || tag (16 bytes). `aad` binds the
 * ciphertext to the row it belongs to, so it cannot be copied to another.
 */
export function seal (key: Buffer, plaintext: Buffer, aad: string): Uint8Array<ArrayBuffer> {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()]))
}

/** The plaintext of `seal`; throws when the key, the associated data or any byte differs. */
export function unseal (key: Buffer, data: Uint8Array, aad: string): Buffer {
  const bytes = Buffer.from(data)
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12)).setAAD(Buffer.from(aad))
  decipher.setAuthTag(bytes.subarray(bytes.length - 16))
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()])
}
