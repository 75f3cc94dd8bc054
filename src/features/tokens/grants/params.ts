import Type, { type Static } from 'typebox'
import { NO_NUL } from '../../../shared/input-formats.js'
import { AuthenticationResponseJSON, MAX_CREDENTIAL_JSON_LENGTH } from '../../passkeys/schemas.js'
import { ClientId } from '../schemas.js'

/**
 * The token endpoint's request parameters (RFC 6749 §4.3.2, §6, and the
 * extension grants'), one schema each. A grant lists those it reads
 * (grant.ts); the registry (index.ts) builds the endpoint's one body schema
 * from every grant's list, and refuses two grants that give one name two
 * schemas.
 */

/** What every token request may carry, whatever its grant. */
export const COMMON_PARAMS = {
  grant_type: Type.String({ maxLength: 64 }),
  client_id: Type.Optional(ClientId),
  /** client_secret_post (RFC 6749 §2.3.1). */
  client_secret: Type.Optional(Type.String({ maxLength: 256, [NO_NUL]: false })),
  scope: Type.Optional(Type.String({ maxLength: 1024 })),
}
export type CommonParams = Static<ReturnType<typeof Type.Object<typeof COMMON_PARAMS>>>

export const USERNAME = Type.String({ maxLength: 320 })
// Any character, as at sign-up (features/accounts/schemas.ts Password): hashed, never stored as text.
export const PASSWORD = Type.String({ maxLength: 1024, [NO_NUL]: false })
export const REFRESH_TOKEN = Type.String({ maxLength: 256 })
export const MFA_TOKEN = Type.String({ maxLength: 128, description: 'mfa-otp grant: the mfa_token of the mfa_required answer' })
export const OTP = Type.String({ maxLength: 16, description: 'mfa-otp grant: the 6-digit code of the authenticator app' })
export const RECOVERY_CODE = Type.String({ maxLength: 32, description: 'mfa-otp grant: a recovery code, instead of otp' })
/** A WebAuthn assertion: an object in a JSON body, its JSON text in a form body (the passkey grant, a step-up, the mfa-otp grant's passkey step). */
export const CREDENTIAL = Type.Union([AuthenticationResponseJSON, Type.String({ maxLength: MAX_CREDENTIAL_JSON_LENGTH })])
