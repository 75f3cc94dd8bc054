import { createHash } from 'node:crypto'
import { acrOf } from '../../shared/authentication-methods.js'
import type { KeyStore } from '../signing-keys/signing-keys.js'

export interface IdTokenInput {
  issuer: string
  clientId: string
  userId: string
  /** The browser session at this provider the sign-in belongs to (OIDC sid). */
  sid: string
  nonce?: string | null | undefined
  authTime: Date
  amr: string[]
  accessToken: string
  /** With the email scope (OIDC Core §5.4). */
  email?: { email: string; verified: boolean } | undefined
  ttlSeconds: number
  now: number
}

/** An ID token (OIDC Core §2, §3.1.3.6), ES256 under the published keys. */
export function issueIdToken (keys: KeyStore, input: IdTokenInput): string {
  const iat = Math.floor(input.now / 1000)
  const acr = acrOf(input.amr)
  return keys.sign(
    {
      iss: input.issuer,
      sub: input.userId,
      aud: input.clientId,
      exp: iat + input.ttlSeconds,
      iat,
      auth_time: Math.floor(input.authTime.getTime() / 1000),
      ...(input.nonce ? { nonce: input.nonce } : {}),
      amr: input.amr,
      ...(acr ? { acr } : {}),
      sid: input.sid,
      at_hash: tokenHash(input.accessToken),
      ...(input.email ? { email: input.email.email, email_verified: input.email.verified } : {}),
    },
    { typ: 'JWT' }
  )
}

/** OIDC Core §3.1.3.6: the left half of SHA-256 of the token's ASCII, base64url (for ES256). */
export function tokenHash (token: string): string {
  const digest = createHash('sha256').update(token, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}
