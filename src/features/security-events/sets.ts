import type { JWTPayload } from 'jose'
import type { KeyStore } from '../signing-keys/signing-keys.js'
import { credentialChangeEvent } from './credential-changes.js'
import { CREDENTIAL_CHANGE, revocationInitiator, SESSION_REVOKED, SET_TYP, VERIFICATION } from './events.js'

/** A queued event as the delivery queue hands it over: a row of security_events. */
export interface QueuedEvent {
  /** The SET's jti. */
  id: string
  event: string
  /** The SET's sub_id, as the trigger wrote it. */
  subject: unknown
  /** What the event's claims are made of (see eventClaims). */
  claims: unknown
  txn: string | null
  createdAt: Date
}

/** The claims of a Security Event Token (RFC 8417 §2.2, SSF 1.0 §4.1): no sub, no exp. */
export interface SetClaims extends JWTPayload {
  iss: string
  iat: number
  jti: string
  aud: string
  sub_id: unknown
  events: Record<string, Record<string, unknown>>
  txn?: string
}

const asObject = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {})

/**
 * The event object of a queued event (CAEP 1.0 §3.1, §3.3; SSF 1.0
 * §8.1.4.1), or null when it cannot be made (an unknown type: never sent).
 */
export function eventClaims (event: string, stored: unknown): Record<string, unknown> | null {
  const claims = asObject(stored)
  switch (event) {
    case SESSION_REVOKED: {
      const reason = typeof claims.reason === 'string' ? claims.reason : null
      return {
        ...(typeof claims.event_timestamp === 'number' ? { event_timestamp: claims.event_timestamp } : {}),
        initiating_entity: revocationInitiator(reason),
        // CAEP 1.0 §2: a message for logs, keyed by language; the service's own reason code.
        ...(reason ? { reason_admin: { en: reason } } : {}),
      }
    }
    case CREDENTIAL_CHANGE:
      return credentialChangeEvent(claims)
    case VERIFICATION:
      return typeof claims.state === 'string' ? { state: claims.state } : {}
    default:
      return null
  }
}

/** The SET for one stream's audience; null when the row's event cannot be sent. */
export function setClaims (row: QueuedEvent, target: { issuer: string; audience: string }): SetClaims | null {
  const event = eventClaims(row.event, row.claims)
  if (event === null) return null
  return {
    iss: target.issuer,
    iat: Math.floor(row.createdAt.getTime() / 1000),
    jti: row.id,
    aud: target.audience,
    ...(row.txn ? { txn: row.txn } : {}),
    sub_id: row.subject,
    events: { [row.event]: event },
  }
}

/**
 * Signs SETs with the service's current signing key (the JWKS of
 * /.well-known/jwks.json verifies them): ES256, kid, typ secevent+jwt, so no
 * SET can pass for an access token (typ at+jwt) or an ID token (RFC 8417
 * §4.5-4.7, SSF 1.0 §4.1.3).
 */
export class SetSigner {
  constructor (
    private readonly keys: Pick<KeyStore, 'sign'>,
    readonly issuer: string
  ) {}

  sign (row: QueuedEvent, audience: string): string | null {
    const claims = setClaims(row, { issuer: this.issuer, audience })
    return claims === null ? null : this.keys.sign(claims, { typ: SET_TYP })
  }
}
