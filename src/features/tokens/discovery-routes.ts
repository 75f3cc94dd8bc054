import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { GRANT_TYPES } from './grants/index.js'

const Metadata = Type.Object({
  issuer: Type.String(),
  token_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  introspection_endpoint: Type.String(),
  jwks_uri: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String()),
  scopes_supported: Type.Array(Type.String()),
})

/** Authorization server metadata (RFC 8414, DESIGN §3.1), under /.well-known. */
const wellKnown: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config } = fastify
  const metadata = {
    issuer: config.issuer,
    token_endpoint: `${config.issuer}/auth/token`,
    revocation_endpoint: `${config.issuer}/auth/revoke`,
    introspection_endpoint: `${config.issuer}/auth/introspect`,
    jwks_uri: `${config.issuer}/.well-known/jwks.json`,
    grant_types_supported: GRANT_TYPES,
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    response_types_supported: [],
    scopes_supported: [...new Set(Object.values(config.clients).flatMap((c) => c.scopes))],
  }

  fastify.get(
    '/oauth-authorization-server',
    {
      config: { publicCache: true },
      schema: { tags: ['discovery'], summary: 'Authorization server metadata (RFC 8414)', response: { 200: Metadata } },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return metadata
    }
  )
}

export default wellKnown
