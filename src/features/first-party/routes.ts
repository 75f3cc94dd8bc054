import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ApiError, DomainError } from '../../errors.js'
import { oauthErrorResponses } from '../../http/error-schemas.js'
import { cookieRequestProblem, grantContext, resolveClient } from '../tokens/transport.js'
import { authorizationChallenge } from './authorization-challenge.js'
import { AuthorizationChallengeRequest, AuthorizationChallengeResponse } from './schemas.js'

/**
 * The Authorization Challenge Endpoint (draft-ietf-oauth-first-party-apps-04,
 * DESIGN §3.16), for first-party clients only. Client authentication and
 * transports are the token endpoint's: a confidential client authenticates
 * as there, and in cookie transport the request passes the same CSRF
 * defence (its code becomes a refresh cookie at the exchange).
 */
const challengeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  await fastify.register(formbody, { bodyLimit: 16 * 1024 })

  fastify.post(
    '/authorize-challenge',
    {
      config: { oauth: true },
      schema: {
        tags: ['oauth'],
        summary: 'Authorization challenge endpoint: first-party sign-in without a browser (draft-ietf-oauth-first-party-apps)',
        description:
          'First request: client_id, code_challenge + code_challenge_method=S256, scope, and username + password (or credential, a passkey assertion). ' +
          'Answers 200 authorization_code, or 403 insufficient_authorization with auth_session and factors: the next request sends auth_session with otp, recovery_code or credential. ' +
          '400 invalid_grant for bad credentials, invalid_session for an auth_session that is unknown, expired or spent (a flow ends with its code). ' +
          'Exchange the code at POST /auth/token (grant_type=authorization_code, code_verifier, no redirect_uri).',
        body: AuthorizationChallengeRequest,
        response: { 200: AuthorizationChallengeResponse, ...oauthErrorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      // draft §5.1: the client names itself (client_id, or its Basic credentials); no default client here.
      if (request.body.client_id === undefined && !/^Basic /i.test(request.headers.authorization ?? '')) {
        throw new DomainError('invalid_request', 'client_id is required')
      }
      const { client, transport } = await resolveClient(fastify, request, request.body)
      // draft §9.1: the endpoint serves first-party clients only.
      if (!client.firstParty || !client.grantTypes.includes('authorization_code')) {
        throw new DomainError('unauthorized_client', 'the authorization challenge endpoint is for first-party clients')
      }
      if (transport === 'cookie') {
        const problem = cookieRequestProblem(fastify, request)
        if (problem) throw new ApiError('csrf_check_failed', problem)
      }
      const { body } = request
      // A login step: the second (auth_session), or the first with a passkey or a password.
      const method = body.auth_session !== undefined ? 'second_factor' : body.credential !== undefined ? 'passkey' : 'password'
      const code = await fastify.metrics.login(method, () => authorizationChallenge(body, grantContext(fastify, request, client, transport)))
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return { authorization_code: code }
    }
  )
}

export default challengeRoutes
