import Type, { type Static } from 'typebox'

/** A published EC public signing key (RFC 7517): exactly the members a JWKS carries. */
export const PublicJwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.Literal('sig'),
    crv: Type.String(),
    x: Type.String(),
    y: Type.String(),
  },
  { additionalProperties: false }
)
export type PublicJwk = Static<typeof PublicJwk>

/** GET /.well-known/jwks.json (RFC 7517 §5). */
export const JwkSet = Type.Object({ keys: Type.Array(PublicJwk) })
export type JwkSet = Static<typeof JwkSet>
