import { CREDENTIAL_CHANGE, type InitiatingEntity } from './events.js'

/**
 * Which audit events are credential changes (CAEP 1.0 §3.3), and what CAEP
 * calls each: the one mapping from this service's audit types to
 * credential_type and change_type. The trigger of migration
 * 20261207000100_security_event_streams lists the same types (a trigger
 * cannot import this); test/features/security-events/credential-changes.test.ts
 * fails when the two lists differ.
 *
 * The credential types beyond CAEP's list (its "any other credential type
 * supported mutually by the Transmitter and the Receiver"): `api-key`, a
 * user's third-party API key (DESIGN §3.7). A TOTP authenticator is CAEP's
 * `app`. A passkey is `fido2-platform` when synced across devices
 * (multiDevice: a platform's passkey provider) and `fido2-roaming` for a
 * device-bound one (a security key, most often); a deleted passkey, whose
 * kind the audit event no longer says, is `fido2-platform`.
 */

export type CredentialType = 'password' | 'app' | 'fido2-platform' | 'fido2-roaming' | 'api-key'
export type ChangeType = 'create' | 'revoke' | 'update' | 'delete'

export interface CredentialChangeClaims {
  credential_type: CredentialType
  change_type: ChangeType
  fido2_aaguid?: string
}

type Details = Record<string, unknown>

const passkeyType = (details: Details): CredentialType => (details.deviceType === 'singleDevice' ? 'fido2-roaming' : 'fido2-platform')
const ZERO_AAGUID = '00000000-0000-0000-0000-000000000000'

/** Audit type → the event's claims, from the audit event's details. */
export const CREDENTIAL_CHANGES = {
  password_changed: () => ({ credential_type: 'password', change_type: 'update' }),
  password_reset: () => ({ credential_type: 'password', change_type: 'update' }),
  totp_enabled: () => ({ credential_type: 'app', change_type: 'create' }),
  totp_removed: () => ({ credential_type: 'app', change_type: 'delete' }),
  // An admin removed every second factor of the user (a lost device).
  second_factors_reset: () => ({ credential_type: 'app', change_type: 'delete' }),
  passkey_registered: (details) => ({
    credential_type: passkeyType(details),
    change_type: 'create',
    ...(typeof details.aaguid === 'string' && details.aaguid !== ZERO_AAGUID ? { fido2_aaguid: details.aaguid } : {}),
  }),
  passkey_deleted: () => ({ credential_type: 'fido2-platform', change_type: 'delete' }),
  // A password-change notice's one-click link removed the passkeys and API keys it listed.
  credentials_removed_by_link: (details) => ({ credential_type: Number(details.passkeys ?? 0) > 0 ? 'fido2-platform' : 'api-key', change_type: 'delete' }),
  api_key_created: () => ({ credential_type: 'api-key', change_type: 'create' }),
  api_key_revoked: () => ({ credential_type: 'api-key', change_type: 'revoke' }),
} as const satisfies Record<string, (details: Details) => CredentialChangeClaims>

export type CredentialChangeAuditType = keyof typeof CREDENTIAL_CHANGES

/** The audit types the trigger turns into credential-change events. */
export const CREDENTIAL_CHANGE_AUDIT_TYPES = Object.keys(CREDENTIAL_CHANGES) as CredentialChangeAuditType[]

export function isCredentialChange (auditType: string): auditType is CredentialChangeAuditType {
  return Object.hasOwn(CREDENTIAL_CHANGES, auditType)
}

/**
 * A credential-change event's claims from what the trigger stored: the
 * audit type, its details, who initiated it and when. Null for an audit
 * type this mapping does not know (never sent: a SET needs its claims).
 */
export function credentialChangeEvent (stored: {
  audit_type?: unknown
  details?: unknown
  initiating_entity?: unknown
  event_timestamp?: unknown
}): Record<string, unknown> | null {
  const type = stored.audit_type
  if (typeof type !== 'string' || !isCredentialChange(type)) return null
  const details = typeof stored.details === 'object' && stored.details !== null ? (stored.details as Details) : {}
  const claims: CredentialChangeClaims = CREDENTIAL_CHANGES[type](details)
  return {
    ...claims,
    ...(typeof stored.initiating_entity === 'string' ? { initiating_entity: stored.initiating_entity as InitiatingEntity } : {}),
    ...(typeof stored.event_timestamp === 'number' ? { event_timestamp: stored.event_timestamp } : {}),
  }
}

export { CREDENTIAL_CHANGE }
