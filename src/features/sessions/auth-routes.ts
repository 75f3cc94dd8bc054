import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { grantedScope, issueTokens, sessionRequest } from '../tokens/grants/index.js'
import { ApiError, DomainError, invalidToken } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { Uuid } from '../../shared/input-formats.js'
import { TokenResponse } from '../tokens/schemas.js'
import { SignupRequest } from '../accounts/schemas.js'
import oauth from '../tokens/routes.js'
import passkey from '../passkeys/auth-routes.js'
import recovery from '../recovery/routes.js'
import { clearRefreshCookie, cookieRequestProblem, grantContext, readRefreshCookie, resolveClient, tokenResponse } from '../tokens/transport.js'

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

const auth: FastifyPluginAsyncTypebox = async (fastify) => {
  await fastify.register(oauth)
  await fastify.register(recovery)
  await fastify.register(passkey)

  fastify.post(
    '/signup',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Create an account and sign it in',
        description:
          'Password: 8 to 72 bytes of UTF-8, not a common password. Answers with the user and a token response in the client\'s transport, and emails a link to verify the address.',
        body: SignupRequest,
        headers: Type.Object({ 'token-transport': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')])) }),
        response: {
          201: Type.Intersect([Type.Object({ user: Type.Ref('User') }), TokenResponse]),
          ...errorResponses(400, 401, 409, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const choice = resolveClient(fastify, request, request.body.client_id)
      if (choice.transport === 'cookie') {
        // The response sets the refresh cookie: same CSRF defence as the token endpoint.
        const problem = cookieRequestProblem(fastify, request)
        if (problem) throw new ApiError('csrf_check_failed', problem)
      }
      await fastify.attemptLimits.signup(request, request.body.email)
      // The verification email is written in the sign-up's transaction.
      const login = await fastify.accounts.signUp(request.body.email, request.body.password, request.ip, fastify.recovery.queueVerification)
      fastify.mailDelivery?.kick()
      const scope = grantedScope(undefined, choice.client.scopes)
      const context = grantContext(fastify, request, choice.client, choice.transport)
      const started = await fastify.accounts.startSession(login, sessionRequest(context, scope))
      // Only an admin acting on the account in the same instant (disabling it) gets here.
      if (!started) throw new DomainError('account_changed', 'the account changed while it was being created; sign in')
      const issued = issueTokens({ ...started, scope }, context)
      const tokens = tokenResponse(fastify, reply, issued, choice.transport)
      return reply.code(201).send({ user: login.user, ...tokens })
    }
  )

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

export default auth
