import Type, { type Static } from 'typebox'
import { AUDIT_EVENT_TYPES } from '../../shared/audit.js'
import { DateTimeInput, Uuid } from '../../shared/input-formats.js'
import { Cursor, PageLimit } from '../../shared/pagination-schemas.js'
import { DateTime, Role } from '../accounts/schemas.js'

const Limit = PageLimit(20)

export const UsersQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'part of the email' })),
    limit: Limit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)

export const UserPatch = Type.Object(
  {
    role: Type.Optional(Role),
    disabled: Type.Optional(Type.Boolean({ description: 'true revokes every session of the user at once' })),
  },
  { additionalProperties: false, minProperties: 1 }
)

export const AuditQuery = Type.Object(
  {
    userId: Type.Optional(Uuid),
    type: Type.Optional(Type.Union(AUDIT_EVENT_TYPES.map((type) => Type.Literal(type)))),
    since: Type.Optional(DateTimeInput),
    until: Type.Optional(DateTimeInput),
    limit: Limit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)

export const AuditEvent = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    userId: Type.Union([Type.String(), Type.Null()]),
    actorId: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    at: DateTime,
    details: Type.Unknown({ description: 'identifiers and reasons; never a secret' }),
  },
  { $id: 'AuditEvent', title: 'Audit event' }
)
export type AuditEvent = Static<typeof AuditEvent>
