import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { invalidToken } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { PasswordChangeRequest } from './schemas.js'
import { signedInUser } from '../../http/signed-in-user.js'

/** The signed-in user's account (DESIGN §3.3), under /users: who they are, a new password. */
const users: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/me',
    {
      preHandler: fastify.authorize({ scopes: ['profile'], apiKeys: true }),
      // An admin who must enrol a second factor still learns who they are.
      config: { secondFactorEnrolment: true },
      schema: {
        tags: ['accounts'],
        summary: 'The signed-in user',
        description: 'Access token, or an API key with the profile scope.',
        security: [{ bearerAuth: [] }, { apiKey: [] }],
        response: { 200: Type.Ref('User'), ...errorResponses(401) },
      },
    },
    // Not async: a cached user is answered without a promise.
    function currentUser (request) {
      const userId = request.principal!.userId
      return (
        fastify.accounts.cachedPublic(userId) ??
        fastify.accounts.findPublic(userId).then((user) => {
          if (!user) throw invalidToken('the user no longer exists')
          return user
        })
      )
    }
  )

  fastify.post(
    '/me/password',
    {
      preHandler: fastify.authorize({ recentAuthentication: true }),
      schema: {
        tags: ['accounts'],
        summary: 'Change your password',
        description:
          'Every other session of the user is revoked; this one stays signed in; a notice is emailed. Checking currentPassword draws on the same per-account and per-IP budget as the password grant.',
        security: [{ bearerAuth: [] }],
        body: PasswordChangeRequest,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const user = await signedInUser(fastify, request)
      await fastify.attemptLimits.passwordCheck(request, user.email)
      await fastify.accounts.changePassword({
        userId: request.user.sub,
        currentPassword: request.body.currentPassword,
        newPassword: request.body.newPassword,
        currentSessionId: request.user.sid,
        ip: request.ip,
        withinChange: fastify.recovery.passwordChanged,
      })
      fastify.mailDelivery?.kick()
      return reply.code(204).send(null)
    }
  )
}

export default users
