import Type, { type Static } from 'typebox'
import { Cursor, PageLimit } from '../../shared/pagination-schemas.js'
import { DateTime, Email } from '../accounts/schemas.js'

export const OutboxStatus = Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('dead')], {
  description: 'pending: waiting for (another) attempt; sent: accepted by the SMTP server; dead: given up after EMAIL_MAX_ATTEMPTS',
})
export type OutboxStatus = Static<typeof OutboxStatus>

export const OutboxQuery = Type.Object(
  {
    status: Type.Optional(OutboxStatus),
    recipient: Type.Optional(Email),
    limit: PageLimit(20),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)

const NullableDate = Type.Union([DateTime, Type.Null()])

export const OutboxMessage = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    recipient: Type.String(),
    template: Type.String(),
    status: OutboxStatus,
    attempts: Type.Integer(),
    nextAttemptAt: NullableDate,
    lastError: Type.Union([Type.String(), Type.Null()]),
    createdAt: DateTime,
    sentAt: NullableDate,
    deadAt: NullableDate,
    rendered: Type.Union([Type.Object({ subject: Type.String(), text: Type.String(), html: Type.String() }), Type.Null()], {
      description: 'the message as it would be sent, links included: only in the development mailbox (no SMTP_URL, NODE_ENV not production)',
    }),
  },
  { $id: 'OutboxMessage', title: 'Outbox message' }
)
export type OutboxMessage = Static<typeof OutboxMessage>
