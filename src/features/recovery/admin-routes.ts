import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ApiError } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { ADMIN_SECURITY as security, UserParams } from '../admin/routes.js'

/** An admin emails a user a reset link (DESIGN §3.11), inside the admin API's scope. */
const resetRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/users/:id/password-reset',
    {
      schema: {
        tags: ['admin'],
        summary: 'Email a user a password-reset link',
        description:
          'The user gets the same link as from POST /auth/password-reset; the admin never sees it, and no admin can see or set a password. Audited; limited like every request that sends email.',
        security,
        params: UserParams,
        response: { 202: Type.Ref('Accepted'), ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const user = await fastify.administration.getUser(request.params.id)
      if (!user) throw new ApiError('user_not_found', 'no user with this id')
      await fastify.attemptLimits.email(request, user.email)
      await fastify.recovery.adminPasswordReset({ userId: user.id, actorId: request.principal!.userId, ip: request.ip })
      return reply.code(202).send({ status: 'accepted', message: 'A password-reset link was sent to the user.' })
    }
  )
}

export default resetRoutes
