import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { looksLikeJwt } from './access-tokens.js'
import { INTROSPECT_SCOPE, looksLikeApiKey } from '../api-keys/api-keys.js'
import { exchange, SESSION_GRANT_TYPES, TokenRequest } from './grants/index.js'
import { introspect } from './introspection.js'
import { ApiError, DomainError } from '../../errors.js'
import { oauthErrorResponses } from '../../http/error-schemas.js'
import { IntrospectionRequest, IntrospectionResponse, RevocationRequest } from './schemas.js'
import { authenticateClient, clearRefreshCookie, cookieRequestProblem, grantContext, readRefreshCookie, resolveClient, tokenResponse } from './transport.js'

const TokenTransportHeader = Type.Object({
  'token-transport': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')], {
    description: 'ask for cookie or body transport when the client allows both',
  })),
})

/**
 * The RFC 6749 endpoints. They alone accept form bodies, so the form parser
 * is registered in this scope only: no cookie-authenticated route elsewhere
 * can be reached by a cross-site HTML form.
 */
const oauth: FastifyPluginAsyncTypebox = async (fastify) => {
  await fastify.register(formbody, { bodyLimit: 8 * 1024 })

  fastify.post(
    '/token',
    {
      config: { oauth: true },
      schema: {
        tags: ['tokens'],
        summary: 'Token endpoint (RFC 6749 §4.3 password grant, §6 refresh, and extension grants)',
        description:
          'JSON or form body. In cookie transport the refresh token is set as an HttpOnly cookie and read from it; such requests need an allowed Origin and X-Requested-With. ' +
          'For an account with a second factor the password grant answers 400 mfa_required with mfa_token and factors. ' +
          'Extension grants (RFC 6749 §4.5) are named under urn:token-auth:grant-type: — mfa-otp (mfa_token and otp or recovery_code, same client and transport: finishes the login); ' +
          'step-up (refresh_token or its cookie, and one of password, otp, recovery_code, credential: raises the session\'s authentication, no new session).',
        body: TokenRequest,
        headers: TokenTransportHeader,
        response: { 200: Type.Ref('TokenResponse'), ...oauthErrorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const { body } = request
      const choice = await resolveClient(fastify, request, body)
      // A response that sets the refresh cookie needs the same CSRF defence as
      // one that reads it: otherwise a cross-site form could sign a victim's
      // browser into the attacker's account (login CSRF).
      if (choice.transport === 'cookie') assertCookieRequestAllowed(request)
      // The grants that name a session by its refresh token read it from the cookie in cookie transport.
      const params =
        SESSION_GRANT_TYPES.has(body.grant_type) && body.refresh_token === undefined
          ? { ...body, refresh_token: refreshTokenFromCookie(request) }
          : body
      try {
        // Counted by what the grant is: a login step, a step-up (refreshes count in the session store).
        const issued = await fastify.metrics.tokenRequest(params, () => exchange(params, grantContext(fastify, request, choice.client, choice.transport)))
        return tokenResponse(fastify, reply, issued, choice.transport)
      } catch (error) {
        // A refresh token that failed never works again: drop the cookie holding it.
        const deadRefreshToken = params.grant_type === 'refresh_token' && error instanceof DomainError && error.code === 'invalid_grant'
        if (deadRefreshToken && choice.transport === 'cookie') clearRefreshCookie(fastify, reply)
        throw error
      }
    }
  )

  function assertCookieRequestAllowed (request: FastifyRequest): void {
    const problem = cookieRequestProblem(fastify, request)
    if (problem) throw new ApiError('csrf_check_failed', problem)
  }

  function refreshTokenFromCookie (request: FastifyRequest): string | undefined {
    const token = readRefreshCookie(fastify, request)
    if (token !== undefined) assertCookieRequestAllowed(request)
    return token
  }

  fastify.post(
    '/revoke',
    {
      config: { oauth: true },
      schema: {
        tags: ['tokens'],
        summary: 'Token revocation (RFC 7009)',
        description:
          'Revokes the session of a refresh token, or an API key. Answers 200 whether or not the token was known; an access token gets 400 unsupported_token_type (RFC 7009 §2.2.1).',
        body: RevocationRequest,
        response: { 200: Type.Object({}), ...oauthErrorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      if (looksLikeJwt(request.body.token)) {
        // RFC 7009 §2.2.1: access tokens are self-contained and short-lived; the session is what can be revoked.
        throw new DomainError('unsupported_token_type', 'access tokens cannot be revoked; revoke the refresh token or log out')
      }
      if (looksLikeApiKey(request.body.token)) {
        await fastify.apiKeys.revokeByValue(request.body.token, request.ip)
        return {}
      }
      const client = await authenticateClient(fastify, request, request.body)
      const session = await fastify.sessions.findByRefreshToken(request.body.token)
      // RFC 7009 §2.1: a client may only revoke its own tokens.
      if (session && session.clientId === client.id) {
        await fastify.sessions.revokeOne({ sessionId: session.sessionId, userId: session.userId, actorId: null, ip: request.ip, via: 'revocation_endpoint' })
      }
      return {}
    }
  )

  fastify.post(
    '/introspect',
    {
      config: { oauth: true },
      // Only an admin may grant the introspect scope, so it holds only while the key's owner is still an admin.
      preHandler: fastify.authorize({ apiKeys: true, scopes: [INTROSPECT_SCOPE], role: 'admin' }),
      schema: {
        tags: ['tokens'],
        summary: 'Token introspection (RFC 7662)',
        description:
          'For the platform\'s services: is an access token, refresh token or API key usable now? Revocation counts at once. The caller authenticates with an API key holding the introspect scope.',
        security: [{ bearerAuth: [] }],
        body: IntrospectionRequest,
        response: { 200: IntrospectionResponse, ...oauthErrorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return introspect(request.body.token, {
        keys: fastify.keys,
        sessions: fastify.sessions,
        apiKeys: fastify.apiKeys,
        clients: fastify.clients,
        issuer: fastify.config.issuer,
        audience: fastify.config.audience,
        now: fastify.now(),
      })
    }
  )
}

export default oauth
