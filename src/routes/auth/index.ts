import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { AccountError } from '../../domain/accounts.js'
import { recordAuditEvent } from '../../domain/audit.js'
import { lifetimesFor } from '../../domain/clients.js'
import { ApiError, invalidToken } from '../../errors.js'
import { errorResponses } from '../../schemas/errors.js'
import { Uuid } from '../../schemas/formats.js'
import { TokenResponse } from '../../schemas/tokens.js'
import { SignupRequest } from '../../schemas/users.js'
import oauth from './oauth.js'
import { authRateLimit } from './rate-limits.js'
import { clearRefreshCookie, cookieRequestProblem, grantedScope, readRefreshCookie, resolveClient, tokenResponse } from './transport.js'

const LogoutQuery = Type.Object(
  {
    scope: Type.Optional(
      Type.Union([Type.Literal('current'), Type.Literal('others'), Type.Literal('global')], {
        description: 'current (default): this session; others: every other session of the user; global: all of them',
      }),
    ),
  },
  { additionalProperties: false },
)

const SessionParams = Type.Object({ id: Uuid })

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  await fastify.register(oauth)

  const limitSignups = authRateLimit(fastify, 'signup', (request) => (request.body as { email?: string } | undefined)?.email ?? '')

  fastify.post(
    '/signup',
    {
      ...(limitSignups ? { preHandler: limitSignups } : {}),
      schema: {
        tags: ['accounts'],
        summary: 'Create an account and sign it in',
        description:
          'Password: 8 to 72 bytes of UTF-8, not a common password. Answers with the user and a token response in the client\'s transport.',
        body: SignupRequest,
        headers: Type.Object({ 'token-transport': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')])) }),
        response: {
          201: Type.Intersect([Type.Object({ user: Type.Ref('User') }), TokenResponse]),
          ...errorResponses(400, 401, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const choice = resolveClient(fastify, request, request.body.client_id)
      if (choice.transport === 'cookie') {
        // The response sets the refresh cookie: same CSRF defence as the token endpoint.
        const problem = cookieRequestProblem(fastify, request)
        if (problem) throw new ApiError(403, 'csrf_check_failed', problem)
      }
      let user
      try {
        user = await fastify.accounts.signUp(request.body.email, request.body.password, request.ip)
      } catch (error) {
        if (error instanceof AccountError && error.code === 'email_taken') throw new ApiError(409, error.code, error.message)
        if (error instanceof AccountError) throw new ApiError(400, error.code, error.message)
        throw error
      }
      const { grant, refreshToken } = await fastify.sessions.start({
        userId: user.id,
        clientId: choice.client.id,
        scope: grantedScope(undefined, choice.client.scopes),
        lifetimes: lifetimesFor(fastify.config, choice.client, user.role),
        context: { ip: request.ip, userAgent: request.headers['user-agent'] },
      })
      const tokens = tokenResponse(fastify, reply, { grant, refreshToken, choice })
      return reply.code(201).send({ user, ...tokens })
    },
  )

  /** The session a logout or session request acts for: from the access token, else from the refresh cookie. */
  async function currentSession(request: FastifyRequest): Promise<{ userId: string; sessionId: string }> {
    if (request.headers.authorization !== undefined) {
      await fastify.authenticate(request)
      return { userId: request.user.sub, sessionId: request.user.sid }
    }
    const cookie = readRefreshCookie(fastify, request)
    if (cookie === undefined) throw invalidToken(null)
    const problem = cookieRequestProblem(fastify, request)
    if (problem) throw new ApiError(403, 'csrf_check_failed', problem)
    const session = await fastify.sessions.findByRefreshToken(cookie)
    if (!session) throw invalidToken('the refresh cookie is not valid')
    return session
  }

  fastify.post(
    '/logout',
    {
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
      const revoked = await fastify.sessions.revoke(
        scope === 'current' ? { sessionId } : scope === 'others' ? { userId, exceptSessionId: sessionId } : { userId },
        'logout',
      )
      await recordAuditEvent(fastify.db, {
        type: 'logged_out',
        userId,
        actorId: userId,
        ip: request.ip,
        details: { scope, sessionId, revokedSessions: revoked.length },
      })
      if (scope !== 'others') clearRefreshCookie(fastify, reply)
      return reply.code(204).send(null)
    },
  )

  fastify.get(
    '/sessions',
    {
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
    },
  )

  fastify.delete(
    '/sessions/:id',
    {
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
      const revoked = await fastify.sessions.revoke({ sessionId: request.params.id, userId: request.user.sub }, 'revoked_by_user')
      if (revoked.length === 0) throw new ApiError(404, 'session_not_found', 'no live session with this id')
      await recordAuditEvent(fastify.db, {
        type: 'session_revoked',
        userId: request.user.sub,
        actorId: request.user.sub,
        ip: request.ip,
        details: { sessionId: request.params.id },
      })
      return reply.code(204).send(null)
    },
  )
}

export default auth
