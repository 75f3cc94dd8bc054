import Type, { type Static } from 'typebox'
import { AUDIT_EVENT_TYPES } from '../../shared/audit.js'
import { DateTimeInput, Uuid } from '../../shared/input-formats.js'
import { Cursor, PageLimit } from '../../shared/pagination-schemas.js'
import { DateTime, Role, User } from '../accounts/schemas.js'

const Limit = PageLimit(20)

export const UsersQuery = Type.Object(
  {
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'part of the email' })),
    limit: Limit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)

/** Which second factors a user has on: what an admin needs to see in the list, no detail of any. */
export const SecondFactorSummary = Type.Object({
  totp: Type.Boolean({ description: 'an authenticator app (TOTP) is on (a pending, unconfirmed set-up is not)' }),
  passkeys: Type.Integer({ minimum: 0, description: 'how many passkeys the user has' }),
})

/** A user as the admin's list shows them: the public fields, when they last signed in, and their second factors. */
export const AdminUser = Type.Object(
  {
    ...User.properties,
    lastSignInAt: Type.Union([DateTime, Type.Null()], {
      description:
        'the newest successful sign-in (password, passkey or second step) the audit log holds; ' +
        'null: none since the sign-up, or none within AUDIT_RETENTION_DAYS',
    }),
    secondFactors: SecondFactorSummary,
  },
  { $id: 'AdminUser', title: 'User (admin list)' }
)
export type AdminUser = Static<typeof AdminUser>

/** A page of the admin's user list, with the number of users the query matches in all pages. */
export const AdminUserPage = Type.Object({
  items: Type.Array(Type.Ref('AdminUser')),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
  total: Type.Integer({ minimum: 0, description: 'the users matching q (every user without q), across all pages' }),
})

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
    email: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 320,
        description:
          'the events of the user whose address this is now (an exact address, normalised as at sign-up; not a part of one), ' +
          'including those from before an address change; no such user: no events',
      })
    ),
    type: Type.Optional(Type.Union(AUDIT_EVENT_TYPES.map((type) => Type.Literal(type)))),
    since: Type.Optional(DateTimeInput),
    until: Type.Optional(DateTimeInput),
    limit: Limit,
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)

const CurrentEmail = (whose: string) =>
  Type.Union([Type.String(), Type.Null()], { description: `the ${whose}'s address now (not necessarily at the time of the event); null when there is no ${whose}` })

export const AuditEvent = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    userId: Type.Union([Type.String(), Type.Null()]),
    userEmail: CurrentEmail('user'),
    actorId: Type.Union([Type.String(), Type.Null()]),
    actorEmail: CurrentEmail('actor'),
    ip: Type.Union([Type.String(), Type.Null()]),
    at: DateTime,
    details: Type.Unknown({ description: 'identifiers and reasons; never a secret' }),
  },
  { $id: 'AuditEvent', title: 'Audit event' }
)
export type AuditEvent = Static<typeof AuditEvent>
