import Type, { type Static } from 'typebox'
import { NO_NUL } from '../../shared/input-formats.js'

export const ClientId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'public client identifier' })

export const TokenResponse = Type.Object(
  {
    access_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'access token lifetime in seconds' }),
    refresh_token: Type.Optional(Type.String({ description: 'absent in cookie transport: the refresh token is in the cookie' })),
    scope: Type.Optional(Type.String()),
    id_token: Type.Optional(Type.String({ description: 'OpenID Connect: the ID token of an authorization_code grant with the openid scope' })),
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
    client_secret: Type.Optional(Type.String({ maxLength: 256, [NO_NUL]: false })),
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
