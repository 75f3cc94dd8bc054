import Type, { type Static } from 'typebox'
import { PASSWORD_MAX_BYTES } from '../domain/passwords.js'
import { ClientId } from './tokens.js'

/** A Date in handlers, an RFC 3339 string on the wire (fast-json-stringify formats it). */
export const DateTime = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))

/** Surrounding whitespace is allowed here and trimmed by the domain (normalizeEmail). */
export const Email = Type.String({
  maxLength: 320,
  pattern: '^\\s*[^\\s@\\x00-\\x1f]{1,64}@[^\\s@\\x00-\\x1f]+\\.[^\\s@\\x00-\\x1f]{2,}\\s*$',
  description: 'trimmed and lower-cased before use',
})
/** Length in bytes is checked by the domain; this bounds characters so huge bodies fail early. */
export const Password = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_BYTES * 4 })

export const User = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    role: Type.Union([Type.Literal('user'), Type.Literal('admin')]),
    disabled: Type.Boolean(),
    createdAt: DateTime,
  },
  { $id: 'User', title: 'User' },
)
export type User = Static<typeof User>

export const SignupRequest = Type.Object(
  { email: Email, password: Password, client_id: Type.Optional(ClientId) },
  { additionalProperties: false },
)

export const PasswordChangeRequest = Type.Object(
  { currentPassword: Password, newPassword: Password },
  { additionalProperties: false },
)

export const Session = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    clientId: Type.String(),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    createdAt: DateTime,
    lastRefreshedAt: DateTime,
    idleExpiresAt: DateTime,
    absoluteExpiresAt: DateTime,
    current: Type.Boolean({ description: 'the session of the access token that asked' }),
  },
  { $id: 'Session', title: 'Session' },
)
