import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { ApiError } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'

const UserInfo = Type.Object(
  {
    sub: Type.String(),
    email: Type.Optional(Type.String()),
    email_verified: Type.Optional(Type.Boolean()),
    updated_at: Type.Optional(Type.Integer()),
  },
  { title: 'UserInfo response (OIDC Core §5.3.2)' }
)

/**
 * The UserInfo endpoint (OIDC Core §5.3): the claims of the access token's
 * scopes, for an access token granted openid. GET and POST (§5.3.1), the
 * token in the Authorization header (RFC 6750 §2.1).
 */
const userinfoRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // A POST may come form-encoded (OIDC Core §5.3.1); the token is read from the Authorization header only.
  await fastify.register(formbody, { bodyLimit: 8 * 1024 })
  const handler = async (request: FastifyRequest) => {
    const principal = request.principal
    if (principal?.kind !== 'access_token' || !principal.scopes.includes('openid')) {
      throw new ApiError('insufficient_scope', 'the access token was not granted the openid scope', { 'www-authenticate': 'Bearer error="insufficient_scope", scope="openid"' })
    }
    const user = await fastify.accounts.findPublic(principal.userId)
    if (!user) throw new ApiError('invalid_token', 'the user is gone', { 'www-authenticate': 'Bearer error="invalid_token"' })
    return {
      sub: user.id,
      ...(principal.scopes.includes('email') ? { email: user.email, email_verified: user.emailVerifiedAt !== null } : {}),
    }
  }
  const schema = {
    tags: ['oauth'],
    summary: 'UserInfo (OpenID Connect Core §5.3)',
    description: 'The claims of the access token\'s scopes: sub, and email and email_verified with the email scope.',
    security: [{ bearerAuth: [] }],
    response: { 200: UserInfo, ...errorResponses(401, 403) },
  }
  const preHandler = fastify.authorize({})
  fastify.get('/userinfo', { preHandler, schema }, handler)
  fastify.post('/userinfo', { preHandler, schema }, handler)
}

export default userinfoRoutes
