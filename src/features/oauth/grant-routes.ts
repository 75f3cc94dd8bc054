import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { UserParams, ADMIN_SECURITY } from '../admin/routes.js'

export const AppsWithAccess = Type.Object(
  {
    items: Type.Array(Type.Object({
      clientId: Type.String(),
      clientName: Type.String(),
      scope: Type.String(),
      createdAt: Type.String({ format: 'date-time' }),
    })),
  },
  { $id: 'AppsWithAccess', title: 'Apps with access' }
)
const ClientParams = Type.Object({ clientId: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }) })

/** The signed-in user's "apps with access" (DESIGN §3.15): the consents they gave, and their withdrawal. */
export const userGrantRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const authenticated = fastify.authorize({})
  fastify.get(
    '/grants',
    {
      preHandler: authenticated,
      schema: { tags: ['oauth'], summary: 'Apps with access to my account', security: [{ bearerAuth: [] }], response: { 200: Type.Ref('AppsWithAccess'), ...errorResponses(401) } },
    },
    async (request) => ({ items: await fastify.consents.list(request.principal!.userId) })
  )
  fastify.delete(
    '/grants/:clientId',
    {
      preHandler: authenticated,
      schema: {
        tags: ['oauth'],
        summary: "Withdraw an app's access",
        description: 'Deletes the consent and ends every session of that app for this user; its access tokens stop working within a second.',
        security: [{ bearerAuth: [] }],
        params: ClientParams,
        response: { 204: Type.Null(), ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const userId = request.principal!.userId
      const { clientId } = request.params
      await fastify.consents.revoke({ userId, clientId, actorId: userId, ip: request.ip }, (tx) => fastify.sessions.revoke({ clientId, userId }, 'consent_revoked', tx))
      return reply.code(204).send(null)
    }
  )
}

/** An admin's view of a user's consents. */
export const adminGrantRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/users/:id/grants',
    { schema: { tags: ['admin'], summary: "A user's apps with access", security: ADMIN_SECURITY, params: UserParams, response: { 200: Type.Ref('AppsWithAccess'), ...errorResponses(401, 403) } } },
    async (request) => ({ items: await fastify.consents.list(request.params.id) })
  )
}
