import Type, { type Static } from 'typebox'
import { AUDIT_EVENT_TYPES } from '../../shared/audit.js'
import { DateTime } from '../accounts/schemas.js'
import { DateTimeInput, Uuid } from '../../shared/input-formats.js'
import { Cursor, PageLimit } from '../../shared/pagination-schemas.js'

/** An event type an endpoint subscribes to: an audit event type, or `*` for all. */
export const EventType = Type.Union([Type.Literal('*'), ...AUDIT_EVENT_TYPES.map((type) => Type.Literal(type))], {
  description: 'an audit event type, or * for every one',
})

const Url = Type.String({ minLength: 8, maxLength: 2048, description: 'https:// (or http://) URL the events are POSTed to' })
const Events = Type.Array(EventType, { minItems: 1, maxItems: 100, uniqueItems: true })
const Description = Type.String({ maxLength: 500 })

export const WebhookRegistration = Type.Object({ url: Url, events: Events, description: Type.Optional(Description) }, { additionalProperties: false })
export type WebhookRegistration = Static<typeof WebhookRegistration>

export const WebhookPatch = Type.Object(
  {
    url: Type.Optional(Url),
    events: Type.Optional(Events),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    enabled: Type.Optional(Type.Boolean({ description: 'false stops deliveries; true resumes them (and clears a disabling)' })),
  },
  { additionalProperties: false, minProperties: 1 }
)
export type WebhookPatch = Static<typeof WebhookPatch>

export const WebhookParams = Type.Object({ id: Uuid })
export const DeliveryParams = Type.Object({ id: Uuid, deliveryId: Uuid })

export const Webhook = Type.Object(
  {
    id: Type.String(),
    url: Type.String(),
    events: Type.Array(Type.String()),
    description: Type.Union([Type.String(), Type.Null()]),
    enabled: Type.Boolean(),
    disabledReason: Type.Union([Type.String(), Type.Null()]),
    failingSince: Type.Union([DateTime, Type.Null()]),
    createdBy: Type.Union([Type.String(), Type.Null()]),
    createdAt: DateTime,
    updatedAt: DateTime,
    secret: Type.Optional(Type.String({ description: 'whsec_…: the signing secret, in the answer that creates or rotates it only' })),
  },
  { $id: 'Webhook', title: 'Webhook endpoint' }
)
export type WebhookView = Static<typeof Webhook>

export const WebhookList = Type.Object({ items: Type.Array(Type.Ref('Webhook')) })

export const DeliveryStatus = Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')])
export type DeliveryStatus = Static<typeof DeliveryStatus>

export const DeliveryQuery = Type.Object(
  { status: Type.Optional(DeliveryStatus), limit: Type.Optional(PageLimit(50)), cursor: Type.Optional(Cursor) },
  { additionalProperties: false }
)

const Attempt = Type.Object({
  attempt: Type.Integer(),
  at: DateTime,
  status: Type.Union([Type.Integer(), Type.Null()], { description: "the receiver's HTTP status; null when no answer came" }),
  latencyMs: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
})

export const Delivery = Type.Object(
  {
    id: Type.String(),
    webhookId: Type.String({ description: 'the webhook-id header: the same for every attempt (and replay) of this event' }),
    eventId: Type.String(),
    eventType: Type.Union([Type.String(), Type.Null()], { description: 'null once retention deleted the event' }),
    status: DeliveryStatus,
    attempts: Type.Integer(),
    nextAttemptAt: Type.Union([DateTime, Type.Null()]),
    lastStatus: Type.Union([Type.Integer(), Type.Null()]),
    lastLatencyMs: Type.Union([Type.Integer(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdAt: DateTime,
    deliveredAt: Type.Union([DateTime, Type.Null()]),
    deadAt: Type.Union([DateTime, Type.Null()]),
    attemptLog: Type.Array(Attempt, { description: 'newest first, at most the last 20' }),
  },
  { $id: 'WebhookDelivery', title: 'Webhook delivery' }
)
export type DeliveryView = Static<typeof Delivery>

export const DeliveryPage = Type.Object({ items: Type.Array(Type.Ref('WebhookDelivery')), nextCursor: Type.Union([Type.String(), Type.Null()]) })

export const ReplayRequest = Type.Object(
  { since: DateTimeInput, until: DateTimeInput },
  { additionalProperties: false, description: "every event of the endpoint's types in [since, until) is delivered again, with its webhook-id" }
)
export const ReplayAnswer = Type.Object({ queued: Type.Integer() })
