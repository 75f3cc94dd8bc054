import Type, { type Static } from 'typebox'
import { Role } from '../accounts/schemas.js'

/**
 * The claims of this service's access tokens (RFC 9068 §2.2, plus the
 * session id and the user's role). Every one but acr is required: the verifiers
 * require `AccessTokenClaims.required`, and a token that verifies is still
 * checked against this schema, so code downstream can rely on the types.
 */
export const AccessTokenClaims = Type.Object({
  iss: Type.String(),
  aud: Type.String(),
  sub: Type.String(),
  client_id: Type.String(),
  sid: Type.String(),
  jti: Type.String(),
  iat: Type.Integer(),
  exp: Type.Integer(),
  scope: Type.String(),
  role: Role,
  /** RFC 8176 methods of the session's authentication. */
  amr: Type.Array(Type.String({ maxLength: 16 }), { maxItems: 16 }),
  /** When the user last authenticated in this session (OpenID Connect Core §2), epoch seconds. */
  auth_time: Type.Integer(),
  /** The authentication context class met (RFC 9470 §3); absent when none is asserted. */
  acr: Type.Optional(Type.String({ maxLength: 256 })),
})
export type AccessTokenClaims = Static<typeof AccessTokenClaims>

/**
 * A client's own access token (client_credentials): RFC 9068's claims with
 * sub = client_id, and no session, role or user authentication.
 */
export const ClientAccessTokenClaims = Type.Object({
  iss: Type.String(),
  aud: Type.String(),
  sub: Type.String(),
  client_id: Type.String(),
  jti: Type.String(),
  iat: Type.Integer(),
  exp: Type.Integer(),
  scope: Type.String(),
})
export type ClientAccessTokenClaims = Static<typeof ClientAccessTokenClaims>
