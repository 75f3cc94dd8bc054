import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { CATALOGUES } from '../features/catalogues.js'

/**
 * Keys derived from SECRET_KEY, one per purpose, so that no output of one use
 * (a token hash, say) can be replayed as another (an encryption key).
 */
type KeyPurpose = Extract<(typeof CATALOGUES)[number], { keyPurposes: readonly string[] }>['keyPurposes'][number]

/** One key per purpose a capability declares (its catalogue's keyPurposes); the purpose is the HKDF info, so a name never changes. */
export type DerivedKeys = Record<KeyPurpose, Buffer>

const PURPOSES = CATALOGUES.flatMap((catalogue) => ('keyPurposes' in catalogue ? [...catalogue.keyPurposes] : [])) as KeyPurpose[]

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
 * A keyed hash of a password hash, for what must remember the password an
 * account had when it was checked without holding the hash itself (a
 * login's pending second step, an address-change link). bcrypt salts every
 * hash, so any password change changes it.
 */
export function passwordHashMac (key: Buffer, passwordHash: string | null): Buffer {
  return hmacSha256(key, `password_hash:${passwordHash ?? ''}`)
}

/** Whether `passwordHash` is the one `mac` was made of under `key` (constant time). */
export function isPasswordHashMac (key: Buffer, mac: Uint8Array, passwordHash: string | null): boolean {
  const current = passwordHashMac(key, passwordHash)
  return current.length === mac.length && timingSafeEqual(current, mac)
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
