/**
 * How a user proved who they are, in the vocabulary access tokens carry
 * (DESIGN §3.12): RFC 8176 authentication method references, and the one
 * authentication context class this service asserts.
 */

/** RFC 8176 §2 values this service records. */
export const AMR = {
  /** A password. */
  password: 'pwd',
  /** A one-time password: a TOTP code or a recovery code. */
  otp: 'otp',
  /** Proof of possession of a hardware-bound key: a device-bound passkey. */
  hardwareKey: 'hwk',
  /** Proof of possession of a software-secured key: a synced passkey. */
  softwareKey: 'swk',
  /** A user-presence and verification test of the authenticator (WebAuthn UV). */
  user: 'user',
  /** More than one factor. */
  multiFactor: 'mfa',
} as const
export type AuthenticationMethod = (typeof AMR)[keyof typeof AMR]

/**
 * The namespace of this service's own token-endpoint grants (RFC 6749 §4.5
 * extension grants are absolute URIs); GRANT_TYPE_PREFIX + 'mfa-otp' and so on.
 */
export const GRANT_TYPE_PREFIX = 'urn:token-auth:grant-type:'

/**
 * The acr value of an authentication that used more than one factor (or a
 * passkey with user verification, which is two in one). Tokens of a
 * single-factor authentication carry no acr: no level is asserted.
 */
export const ACR_MFA = 'urn:token-auth:acr:mfa'

/** The acr an authentication with these methods meets, or undefined. */
export function acrOf (amr: readonly string[]): string | undefined {
  return amr.includes(AMR.multiFactor) ? ACR_MFA : undefined
}

/**
 * The methods an authentication used: `now`, what it proved, on top of
 * `earlier`, what the session it raises proved at login ([] for a login).
 * mfa is added only when this authentication itself showed a possession
 * factor and the two together make two factors (a password and a code, or
 * a passkey that verified its user): a step-up with a password alone never
 * renews a level. Sorted and without duplicates, so equal facts compare equal.
 */
export function combineMethods (earlier: readonly string[], now: readonly string[]): string[] {
  const methods = new Set([...earlier, ...now])
  methods.delete(AMR.multiFactor)
  const key = (list: readonly string[]) => list.includes(AMR.hardwareKey) || list.includes(AMR.softwareKey)
  const possessionNow = now.includes(AMR.otp) || key(now)
  const verifiedPasskeyNow = key(now) && now.includes(AMR.user)
  if (possessionNow && (methods.has(AMR.password) || verifiedPasskeyNow)) methods.add(AMR.multiFactor)
  return [...methods].sort()
}

/** What a login proved and when: what a session starts with and its tokens carry. */
export interface Authentication {
  amr: string[]
  authTime: Date
}
