import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { signedInUser } from '../../http/signed-in-user.js'
import { foldEmail } from '../accounts/accounts.js'
import { EmailChangeRequest } from '../accounts/schemas.js'

/** A change of the signed-in user's address (DESIGN §3.11), under /users: a link to the new address, a notice to the old. */
const emailChangeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/me/email',
    {
      preHandler: fastify.authorize({ recentAuthentication: true }),
      schema: {
        tags: ['accounts'],
        summary: 'Change your email address',
        description:
          'Checks currentPassword (the password grant\'s budget), then emails a link to newEmail; the address changes only when that link is opened and POSTed to /auth/verify-email. ' +
          'The current address is told at once. The answer is the same whether or not newEmail belongs to another account. Limited like every request that sends email.',
        security: [{ bearerAuth: [] }],
        body: EmailChangeRequest,
        response: { 202: Type.Ref('Accepted'), ...errorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const user = await signedInUser(fastify, request)
      await fastify.attemptLimits.passwordCheck(request, user.email)
      await fastify.attemptLimits.email(request, foldEmail(request.body.newEmail))
      await fastify.recovery.requestEmailChange({ userId: user.id, newEmail: request.body.newEmail, currentPassword: request.body.currentPassword, ip: request.ip })
      return reply.code(202).send({ status: 'accepted', message: 'Open the link sent to the new address to confirm the change.' })
    }
  )
}

export default emailChangeRoutes
