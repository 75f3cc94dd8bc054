import Type, { type Static } from 'typebox'
import { Role } from './users.js'

/**
 * The claims of this service's access tokens (RFC 9068 §2.2, plus the
 * session id and the user's role). Every one is required: the verifiers
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
})
export type AccessTokenClaims = Static<typeof AccessTokenClaims>
