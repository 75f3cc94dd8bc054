import Type, { type Static } from 'typebox'
import { NO_NUL } from './formats.js'
import { AuthenticationResponseJSON, MAX_CREDENTIAL_JSON_LENGTH } from './passkeys.js'

export const ClientId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'public client identifier' })

/**
 * POST /auth/token body (RFC 6749 §4.3.2, §6). One object for every grant so
 * that an unsupported grant_type gets its own error code instead of a schema
 * failure; unrecognised parameters are ignored as §3.2 requires.
 */
export const TokenRequest = Type.Object(
  {
    grant_type: Type.String({ maxLength: 64 }),
    username: Type.Optional(Type.String({ maxLength: 320 })),
    // Any character, as at sign-up (schemas/users.ts Password): hashed, never stored as text.
    password: Type.Optional(Type.String({ maxLength: 1024, [NO_NUL]: false })),
    refresh_token: Type.Optional(Type.String({ maxLength: 256 })),
    client_id: Type.Optional(ClientId),
    scope: Type.Optional(Type.String({ maxLength: 1024 })),
    // The mfa-otp grant (grants/mfa-otp.ts): the token mfa_required answered with, and one code.
    mfa_token: Type.Optional(Type.String({ maxLength: 128, description: 'mfa-otp grant: the mfa_token of the mfa_required answer' })),
    otp: Type.Optional(Type.String({ maxLength: 16, description: 'mfa-otp grant: the 6-digit code of the authenticator app' })),
    recovery_code: Type.Optional(Type.String({ maxLength: 32, description: 'mfa-otp grant: a recovery code, instead of otp' })),
    // The assertion of the passkey grant, of a step-up and of the mfa-otp grant's passkey step: an object in a JSON body, its JSON text in a form body.
    credential: Type.Optional(Type.Union([AuthenticationResponseJSON, Type.String({ maxLength: MAX_CREDENTIAL_JSON_LENGTH })])),
  },
  { additionalProperties: true }
)
export type TokenRequest = Static<typeof TokenRequest>

export const TokenResponse = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'access token lifetime in seconds' }),
    refresh_token: Type.Optional(Type.String({ description: 'absent in cookie transport: the refresh token is in the cookie' })),
    scope: Type.Optional(Type.String()),
  },
  { $id: 'TokenResponse', title: 'Token response' }
)
export type TokenResponse = Static<typeof TokenResponse>

/** POST /auth/revoke body (RFC 7009 §2.1). */
export const RevocationRequest = Type.Object(
  {
    // Room for an access token: RFC 7009 §2.2 answers any token, the refusal included.
    token: Type.String({ maxLength: 4096, [NO_NUL]: false }),
    token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
    client_id: Type.Optional(ClientId),
  },
  { additionalProperties: true }
)
export type RevocationRequest = Static<typeof RevocationRequest>

/** POST /auth/introspect body (RFC 7662 §2.1). */
export const IntrospectionRequest = Type.Object(
  {
    // Any string: one that is no token is inactive (RFC 7662 §2.2), never an error; it is only hashed or parsed.
    token: Type.String({ maxLength: 4096, [NO_NUL]: false }),
    token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: true }
)

export const IntrospectionResponse = Type.Object(
  {
    active: Type.Boolean(),
    token_type: Type.Optional(Type.Union([Type.Literal('access_token'), Type.Literal('refresh_token'), Type.Literal('api_key')])),
    sub: Type.Optional(Type.String()),
    scope: Type.Optional(Type.String()),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    client_id: Type.Optional(Type.String()),
    sid: Type.Optional(Type.String()),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.String()),
  },
  { title: 'Introspection response' }
)
/** RFC 7662 §2.2. Inactive tokens get `{ active: false }` and nothing more. */
export type IntrospectionResponse = Static<typeof IntrospectionResponse>
