import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { ApiError, invalidToken } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { Uuid } from '../../shared/input-formats.js'
import { clearRefreshCookie, cookieRequestProblem, readRefreshCookie } from '../tokens/transport.js'

const LogoutQuery = Type.Object(
  {
    scope: Type.Optional(
      Type.Union([Type.Literal('current'), Type.Literal('others'), Type.Literal('global')], {
        description: 'current (default): this session; others: every other session of the user; global: all of them',
      })
    ),
  },
  { additionalProperties: false }
)

const SessionParams = Type.Object({ id: Uuid })

/** A user's sessions (DESIGN §3.5), under /auth: sign out, list, revoke one. */
const sessionRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  /** The session a logout or session request acts for: from the access token, else from the refresh cookie. */
  async function currentSession (request: FastifyRequest): Promise<{ userId: string; sessionId: string }> {
    if (request.headers.authorization !== undefined) {
      await fastify.authenticate(request)
      return { userId: request.user.sub, sessionId: request.user.sid }
    }
    const cookie = readRefreshCookie(fastify, request)
    if (cookie === undefined) throw invalidToken(null)
    const problem = cookieRequestProblem(fastify, request)
    if (problem) throw new ApiError('csrf_check_failed', problem)
    const session = await fastify.sessions.findByRefreshToken(cookie)
    if (!session) throw invalidToken('the refresh cookie is not valid')
    return session
  }

  fastify.post(
    '/logout',
    {
      config: { secondFactorEnrolment: true },
      schema: {
        tags: ['sessions'],
        summary: 'Sign out',
        description:
          'Authenticated by the access token, or by the refresh cookie (then with an allowed Origin and X-Requested-With). Clears the cookie.',
        querystring: LogoutQuery,
        security: [{ bearerAuth: [] }],
        response: { 204: Type.Null(), ...errorResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const { userId, sessionId } = await currentSession(request)
      const scope = request.query.scope ?? 'current'
      await fastify.sessions.logout({ userId, sessionId, scope, ip: request.ip })
      if (scope !== 'others') clearRefreshCookie(fastify, reply)
      return reply.code(204).send(null)
    }
  )

  fastify.get(
    '/sessions',
    {
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authenticate,
      schema: {
        tags: ['sessions'],
        summary: "The user's live sessions",
        security: [{ bearerAuth: [] }],
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('Session')) }), ...errorResponses(401) },
      },
    },
    async (request) => {
      const sessions = await fastify.sessions.listLive(request.user.sub)
      return {
        items: sessions.map((session) => ({ ...session, current: session.id === request.user.sid })),
      }
    }
  )

  fastify.delete(
    '/sessions/:id',
    {
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authenticate,
      schema: {
        tags: ['sessions'],
        summary: 'Revoke one of your sessions',
        params: SessionParams,
        security: [{ bearerAuth: [] }],
        response: { 204: Type.Null(), ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      const userId = request.user.sub
      const revoked = await fastify.sessions.revokeOne({ sessionId: request.params.id, userId, actorId: userId, ip: request.ip })
      if (!revoked) throw new ApiError('session_not_found', 'no live session with this id')
      return reply.code(204).send(null)
    }
  )
}

export default sessionRoutes
