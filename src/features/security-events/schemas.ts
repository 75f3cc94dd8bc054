import Type, { type Static } from 'typebox'
import { Uuid } from '../../shared/input-formats.js'

/**
 * The wire shapes of the security-event streams (DESIGN §3.18): SSF 1.0's
 * transmitter metadata and stream management API, RFC 8936's poll request
 * and response. Bodies refuse unknown members, as everywhere in the API;
 * the transmitter-supplied members of a stream's configuration may be sent
 * back in PATCH and PUT, and must then match (SSF 1.0 §8.1.1.3).
 */

const EventTypeUri = Type.String({ minLength: 1, maxLength: 256, description: 'an event type URI' })
const EventTypes = Type.Array(EventTypeUri, { maxItems: 20 })
/** An HTTP header value: visible ASCII and spaces only, so nothing can split the request it goes into. */
const HeaderValue = Type.String({ minLength: 1, maxLength: 4096, pattern: '^[\\x20-\\x7E]+$' })

/** SSF 1.0 §6.1: how SETs reach the receiver. */
export const DeliveryInput = Type.Object(
  {
    method: Type.String({ maxLength: 64, description: 'urn:ietf:rfc:8936 (poll, the default) or urn:ietf:rfc:8935 (push)' }),
    endpoint_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'push: the receiver\'s URL (public addresses only); poll: the transmitter\'s, as it answered' })),
    authorization_header: Type.Optional(HeaderValue),
  },
  { additionalProperties: false }
)
export type DeliveryInput = Static<typeof DeliveryInput>

/** The transmitter-supplied members a receiver may send back (they must match). */
const transmitterSupplied = {
  iss: Type.Optional(Type.String({ maxLength: 2000 })),
  aud: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 10 })])),
  events_supported: Type.Optional(EventTypes),
  events_delivered: Type.Optional(EventTypes),
  min_verification_interval: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
  inactivity_timeout: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
}

const receiverSupplied = {
  delivery: Type.Optional(DeliveryInput),
  events_requested: Type.Optional(EventTypes),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
}

/** POST /ssf/stream (SSF 1.0 §8.1.1.1): the receiver-supplied members. */
export const StreamCreateRequest = Type.Object(receiverSupplied, { additionalProperties: false })
export type StreamCreateRequest = Static<typeof StreamCreateRequest>

/** PATCH and PUT /ssf/stream (SSF 1.0 §8.1.1.3, §8.1.1.4). */
export const StreamUpdateRequest = Type.Object(
  { stream_id: Uuid, ...receiverSupplied, ...transmitterSupplied },
  { additionalProperties: false }
)
export type StreamUpdateRequest = Static<typeof StreamUpdateRequest>

export const StreamQuery = Type.Object({ stream_id: Type.Optional(Uuid) }, { additionalProperties: false })
export const StreamIdQuery = Type.Object({ stream_id: Uuid }, { additionalProperties: false })

/** A stream's configuration (SSF 1.0 §8.1.1). A push stream's authorization_header is never shown. */
export const StreamConfiguration = Type.Object(
  {
    stream_id: Type.String(),
    iss: Type.String(),
    aud: Type.String(),
    delivery: Type.Object({ method: Type.String(), endpoint_url: Type.String() }),
    events_supported: Type.Array(Type.String()),
    events_requested: Type.Array(Type.String()),
    events_delivered: Type.Array(Type.String()),
    description: Type.Optional(Type.String()),
    min_verification_interval: Type.Integer(),
    inactivity_timeout: Type.Optional(Type.Integer({ description: 'seconds a poll stream may go unpolled before it is deleted' })),
  },
  { $id: 'SsfStreamConfiguration', title: 'Stream configuration' }
)
export type StreamConfiguration = Static<typeof StreamConfiguration>

export const StreamStatusValue = Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')])
export type StreamStatusValue = Static<typeof StreamStatusValue>

/** GET /ssf/status, and POST /ssf/status's answer (SSF 1.0 §8.1.2). */
export const StreamStatus = Type.Object({
  stream_id: Type.String(),
  status: StreamStatusValue,
  reason: Type.Optional(Type.String()),
})
export type StreamStatus = Static<typeof StreamStatus>

/** POST /ssf/status (SSF 1.0 §8.1.2.2). */
export const StreamStatusRequest = Type.Object(
  { stream_id: Uuid, status: StreamStatusValue, reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false }
)
export type StreamStatusRequest = Static<typeof StreamStatusRequest>

/** POST /ssf/verify (SSF 1.0 §8.1.4.2). */
export const VerificationRequest = Type.Object(
  { stream_id: Uuid, state: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false }
)
export type VerificationRequest = Static<typeof VerificationRequest>

/** RFC 8936 §2.4.4: a SET the receiver could not take, and why. */
const SetError = Type.Object(
  { err: Type.String({ maxLength: 64 }), description: Type.Optional(Type.String({ maxLength: 1000 })) },
  { additionalProperties: false }
)

/** POST /ssf/poll/:streamId (RFC 8936 §2.4): acknowledge, report errors, and ask for more. */
export const PollRequest = Type.Object(
  {
    ack: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 1000, description: 'jti of SETs received and processed' })),
    setErrs: Type.Optional(Type.Record(Type.String({ maxLength: 100 }), SetError, { maxProperties: 1000, description: 'jti of SETs refused, with the error' })),
    maxEvents: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'at most this many SETs; 0: none (acknowledge only)' })),
    returnImmediately: Type.Optional(Type.Boolean({ description: 'false (the default): wait for an event, a few seconds at most (long polling)' })),
  },
  { additionalProperties: false }
)
export type PollRequest = Static<typeof PollRequest>

/** RFC 8936 §2.5: the SETs, keyed by jti. */
export const PollResponse = Type.Object({
  sets: Type.Record(Type.String(), Type.String()),
  moreAvailable: Type.Optional(Type.Boolean()),
})
export type PollResponse = Static<typeof PollResponse>

export const PollParams = Type.Object({ streamId: Uuid })

/** GET /.well-known/ssf-configuration (SSF 1.0 §7.1). */
export const TransmitterConfiguration = Type.Object(
  {
    spec_version: Type.String(),
    issuer: Type.String(),
    jwks_uri: Type.String(),
    delivery_methods_supported: Type.Array(Type.String()),
    configuration_endpoint: Type.String(),
    status_endpoint: Type.String(),
    verification_endpoint: Type.String(),
    critical_subject_members: Type.Array(Type.String()),
    authorization_schemes: Type.Array(Type.Object({ spec_urn: Type.String() })),
    default_subjects: Type.String(),
    events_supported: Type.Array(Type.String()),
  },
  { additionalProperties: false }
)
export type TransmitterConfiguration = Static<typeof TransmitterConfiguration>
