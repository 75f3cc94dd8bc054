import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ADMIN_KEY_SCOPES } from './api-keys.js'
import { ApiError } from '../../errors.js'
import { ApiKeyCreateRequest, ApiKeysQuery, CreatedApiKey } from './schemas.js'
import { errorResponses } from '../../http/error-schemas.js'
import { page } from '../../shared/pagination-schemas.js'
import { Uuid } from '../../shared/input-formats.js'

/**
 * A user's own API keys (DESIGN §3.7). Managed with access tokens only: a key
 * cannot mint keys. Creating one adds a way into the account that outlives
 * every session, so it is guarded as adding a factor is (§3.12).
 */
const apiKeys: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.addHook('preHandler', fastify.authorize({}))

  fastify.post(
    '/',
    {
      preHandler: fastify.authorize({ addsFactor: true }),
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key; the key is shown this once',
        description:
          'Refused with 409 api_key_limit when the user already holds API_KEY_LIMIT_PER_USER live (unrevoked, unexpired) keys. ' +
          'A key acts without the password, so it needs a verified address (403 email_verification_required), a recent authentication and, on an account with a second factor, ' +
          'one proven in this session (401 insufficient_user_authentication: step up). The account\'s address is told, with the key\'s name and prefix.',
        security: [{ bearerAuth: [] }],
        body: ApiKeyCreateRequest,
        response: { 201: CreatedApiKey, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = request.principal!
      const allowed = new Set([...fastify.config.scopes, ...(principal.role === 'admin' ? ADMIN_KEY_SCOPES : [])])
      const refused = request.body.scopes.filter((scope) => !allowed.has(scope))
      if (refused.length > 0) throw new ApiError('invalid_scope', `scopes not allowed: ${refused.join(' ')}`)
      let expiresAt: Date | null = null
      if (request.body.expiresAt !== undefined) {
        expiresAt = new Date(request.body.expiresAt)
        if (expiresAt.getTime() <= fastify.now()) throw new ApiError('invalid_expiry', 'expiresAt must be in the future')
      }
      const created = await fastify.apiKeys.create({ userId: principal.userId, name: request.body.name, scopes: request.body.scopes, expiresAt, ip: request.ip })
      reply.header('cache-control', 'no-store')
      return reply.code(201).send(created)
    }
  )

  fastify.get(
    '/',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Your API keys (no secrets), newest first, a page at a time',
        security: [{ bearerAuth: [] }],
        querystring: ApiKeysQuery,
        response: { 200: page(Type.Ref('ApiKey')), ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.apiKeys.list(request.principal!.userId, request.query)
  )

  fastify.delete(
    '/:id',
    {
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke an API key',
        security: [{ bearerAuth: [] }],
        params: Type.Object({ id: Uuid }),
        response: { 204: Type.Null(), ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const { userId } = request.principal!
      const revoked = await fastify.apiKeys.revoke({ userId, apiKeyId: request.params.id, actorId: userId, ip: request.ip })
      if (!revoked) throw new ApiError('api_key_not_found', 'no live API key with this id')
      return reply.code(204).send(null)
    }
  )
}

export default apiKeys
