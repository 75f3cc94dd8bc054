import Type from 'typebox'
import { AUDIT_EVENT_TYPES } from '../domain/audit.js'
import { DateTimeInput, Uuid } from './formats.js'
import { DateTime } from './users.js'

const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20 })
const Cursor = Type.String({ minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_-]+$', description: 'nextCursor of the previous page (base64url)' })

export const UsersQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'part of the email' })),
    limit: Limit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
)

export const UserPatch = Type.Object(
  {
    role: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('admin')])),
    disabled: Type.Optional(Type.Boolean({ description: 'true revokes every session of the user at once' })),
  },
  { additionalProperties: false, minProperties: 1 },
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
  { additionalProperties: false },
)

export const AuditEvent = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    userId: Type.Union([Type.String(), Type.Null()]),
    actorId: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    at: DateTime,
    details: Type.Unknown(),
  },
  { $id: 'AuditEvent', title: 'Audit event' },
)

export const page = <T extends import('typebox').TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) })
