import Type, { type Static } from 'typebox'
import { PASSWORD_MAX_BYTES } from './passwords.js'
import { NO_NUL } from '../../shared/input-formats.js'
import { ClientId } from '../tokens/schemas.js'

/** A Date in handlers, an RFC 3339 string on the wire (fast-json-stringify formats it). */
export const DateTime = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))

/**
 * Only bounded here: an address is checked after normalisation (NFKC can
 * turn one character into a second @ or into 18), by the domain
 * (normalizeEmail), which answers 400 invalid_email.
 */
export const Email = Type.String({
  minLength: 3,
  maxLength: 320,
  description:
    'normalised (NFKC, trimmed, lower-cased), then checked: one @, a dot-atom local part of at most 64 octets, ' +
    'a domain name, at most 254 octets in all (RFC 5321 §4.5.3.1); no invisible or control characters',
})
/**
 * Length in bytes is checked by the domain; this bounds characters so huge
 * bodies fail early. Any character is allowed, U+0000 too: a password is
 * hashed, never stored as text, so it opts out of the NUL rule (shared/input-formats.ts).
 */
export const Password = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_BYTES * 4, [NO_NUL]: false })

export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])

export const User = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    role: Role,
    disabled: Type.Boolean(),
    emailVerifiedAt: Type.Union([DateTime, Type.Null()], { description: 'when the owner of the address proved it by an emailed link; null: not yet' }),
    createdAt: DateTime,
  },
  { $id: 'User', title: 'User' }
)
/** A user as the API shows it: no password hash. */
export type PublicUser = Static<typeof User>

export const SignupRequest = Type.Object(
  { email: Email, password: Password, client_id: Type.Optional(ClientId) },
  { additionalProperties: false }
)

export const EmailChangeRequest = Type.Object(
  { newEmail: Email, currentPassword: Password },
  { additionalProperties: false }
)

export const PasswordChangeRequest = Type.Object(
  { currentPassword: Password, newPassword: Password },
  { additionalProperties: false }
)

/** A live session as its user and the admins see it (without "current", which depends on who asks). */
export const SessionSummary = Type.Object({
  id: Type.String({ format: 'uuid' }),
  clientId: Type.String(),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  createdAt: DateTime,
  lastRefreshedAt: DateTime,
  idleExpiresAt: DateTime,
  absoluteExpiresAt: DateTime,
})
export type SessionSummary = Static<typeof SessionSummary>

export const Session = Type.Interface(
  [SessionSummary],
  { current: Type.Boolean({ description: 'the session of the access token that asked' }) },
  { $id: 'Session', title: 'Session' }
)
