import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ApiError } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { ADMIN_SECURITY as security, UserParams } from '../admin/routes.js'
import { SecondFactorsReset } from './schemas.js'

/** An admin removes a user's second factors (a lost device), inside the admin API's scope. */
const factorResetRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/users/:id/mfa/reset',
    {
      schema: {
        tags: ['admin'],
        summary: "Remove all of a user's second factors",
        description:
          'For a user who lost their authenticator and recovery codes: removes every second factor (the authenticator, recovery codes, pending second steps) so that the password alone signs in again. ' +
          'Sessions stay. Audited with the admin as actor; the user is told by email.',
        security,
        params: UserParams,
        response: { 200: SecondFactorsReset, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const removed = await fastify.secondFactors.adminReset({ userId: request.params.id, actorId: request.principal!.userId, ip: request.ip })
      if (!removed) throw new ApiError('user_not_found', 'no user with this id')
      return { removed }
    }
  )
}

export default factorResetRoutes
