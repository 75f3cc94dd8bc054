/**
 * The event types of the security-event streams (DESIGN §3.18) and the
 * Security Event Tokens carrying them: RFC 8417 as SSF 1.0 §4.1 profiles it
 * (typ secevent+jwt, sub_id rather than sub, no exp), with the CAEP 1.0
 * events session-revoked and credential-change and SSF's verification event.
 * Nothing here touches the database or HTTP.
 */

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
/** SSF 1.0 §8.1.4.1: sent when a receiver asks for it, on any stream whatever its events. */
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'

/** What a stream may subscribe to (its events_supported). */
export const EVENTS_SUPPORTED = [SESSION_REVOKED, CREDENTIAL_CHANGE] as const

/** RFC 8417 §2.3 explicit typing, required by SSF 1.0 §4.1.1. */
export const SET_TYP = 'secevent+jwt'
/** RFC 8935 §2: the media type of a pushed SET. */
export const SET_MEDIA_TYPE = 'application/secevent+jwt'

/** RFC 8935 and RFC 8936 delivery method URIs (SSF 1.0 §6.1). */
export const PUSH_METHOD = 'urn:ietf:rfc:8935'
export const POLL_METHOD = 'urn:ietf:rfc:8936'

/** A stream's events_delivered: what it asked for, among what is supported (SSF 1.0 §8.1.1), in the supported order. */
export function eventsDelivered (requested: readonly string[] | null | undefined): string[] {
  const asked = new Set(requested ?? [])
  return EVENTS_SUPPORTED.filter((event) => asked.has(event))
}

/** CAEP 1.0 §2: who caused the event. */
export type InitiatingEntity = 'admin' | 'user' | 'policy' | 'system'

/**
 * Why a session ended (sessions.revoked_reason, as the service writes it)
 * and who caused it, in CAEP's words. A reason missing here is sent as
 * `system`, the service itself.
 */
const REVOCATION_INITIATORS: Record<string, InitiatingEntity> = {
  logout: 'user',
  signed_out: 'user',
  revoked_by_user: 'user',
  token_revoked: 'user',
  password_reset: 'user',
  password_changed: 'user',
  consent_revoked: 'user',
  signed_in_again: 'user',
  passkey_removed: 'user',
  user_disabled: 'admin',
  role_changed: 'admin',
  client_deleted: 'admin',
  refresh_token_reused: 'policy',
  authorization_code_reused: 'policy',
  sign_in_ended: 'system',
}

export function revocationInitiator (reason: string | null | undefined): InitiatingEntity {
  return (reason && REVOCATION_INITIATORS[reason]) || 'system'
}
