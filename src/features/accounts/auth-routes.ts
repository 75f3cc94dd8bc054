import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ApiError, DomainError } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { grantedScope, issueTokens, sessionRequest } from '../tokens/grants/index.js'
import { TokenResponse } from '../tokens/schemas.js'
import { cookieRequestProblem, grantContext, resolveClient, tokenResponse } from '../tokens/transport.js'
import { SignupRequest } from './schemas.js'

/** Sign-up (DESIGN §3.3), under /auth: the new account, signed in, in its client's transport. */
const signupRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
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
      const choice = await resolveClient(fastify, request, { client_id: request.body.client_id })
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
}

export default signupRoutes
