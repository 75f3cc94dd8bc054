import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { looksLikeJwt } from '../../domain/access-tokens.js'
import { looksLikeApiKey } from '../../domain/api-keys.js'
import { recordAuditEvent } from '../../domain/audit.js'
import { lifetimesFor } from '../../domain/clients.js'
import { introspect } from '../../domain/introspection.js'
import type { RotationFailure } from '../../domain/sessions.js'
import { OAuthError } from '../../errors.js'
import { oauthErrorResponses } from '../../schemas/errors.js'
import { IntrospectionRequest, IntrospectionResponse, RevocationRequest, TokenRequest } from '../../schemas/tokens.js'
import { INTROSPECT_SCOPE } from '../api-keys/index.js'
import {
  clearRefreshCookie,
  cookieRequestProblem,
  grantedScope,
  readRefreshCookie,
  resolveClient,
  tokenResponse,
} from './transport.js'

const TokenTransportHeader = Type.Object({
  'token-transport': Type.Optional(Type.Union([Type.Literal('cookie'), Type.Literal('body')], {
    description: 'ask for cookie or body transport when the client allows both',
  })),
})

const REFRESH_FAILURES: Record<RotationFailure, string> = {
  unknown: 'the refresh token is invalid',
  client_mismatch: 'the refresh token was issued to another client',
  expired: 'the refresh token expired',
  revoked: 'the refresh token was revoked',
  user_disabled: 'the refresh token is invalid',
  reused: 'the refresh token was already used; the session is revoked',
}

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
        summary: 'Token endpoint (RFC 6749 §4.3 password grant, §6 refresh)',
        description:
          'JSON or form body. In cookie transport the refresh token is set as an HttpOnly cookie and read from it; such requests need an allowed Origin and X-Requested-With.',
        body: TokenRequest,
        headers: TokenTransportHeader,
        response: { 200: Type.Ref('TokenResponse'), ...oauthErrorResponses(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const { body } = request
      const choice = resolveClient(fastify, request, body.client_id)
      // A response that sets the refresh cookie needs the same CSRF defence as
      // one that reads it: otherwise a cross-site form could sign a victim's
      // browser into the attacker's account (login CSRF).
      if (choice.transport === 'cookie') assertCookieRequestAllowed(request)
      const context = { ip: request.ip, userAgent: request.headers['user-agent'] }

      if (body.grant_type === 'password') {
        if (!body.username || body.password === undefined) {
          throw new OAuthError(400, 'invalid_request', 'the password grant needs username and password')
        }
        const scope = grantedScope(body.scope, choice.client.scopes)
        await fastify.attemptLimits.passwordCheck(request, body.username)
        const login = await fastify.accounts.passwordLogin(body.username, body.password, {
          clientId: choice.client.id,
          scope,
          lifetimesFor: (role) => lifetimesFor(fastify.config, choice.client, role),
          context,
        })
        if (!login) throw new OAuthError(400, 'invalid_grant', 'invalid username or password')
        return tokenResponse(fastify, reply, { grant: login.grant, refreshToken: login.refreshToken, choice })
      }

      if (body.grant_type === 'refresh_token') {
        const refreshToken = body.refresh_token ?? refreshTokenFromCookie(request)
        if (!refreshToken) throw new OAuthError(400, 'invalid_request', 'refresh_token is missing')
        const result = await fastify.sessions.rotate(refreshToken, choice.client.id, context)
        if (!result.ok) {
          if (choice.transport === 'cookie') clearRefreshCookie(fastify, reply)
          throw new OAuthError(400, 'invalid_grant', REFRESH_FAILURES[result.reason])
        }
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
        const scope = body.scope === undefined ? undefined : grantedScope(body.scope, result.grant.scope.split(' '))
        return tokenResponse(fastify, reply, {
          grant: result.grant,
          refreshToken: result.refreshToken,
          choice,
          ...(scope === undefined ? {} : { scope }),
        })
      }

      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be password or refresh_token')
    },
  )

  function assertCookieRequestAllowed(request: FastifyRequest): void {
    const problem = cookieRequestProblem(fastify, request)
    if (problem) throw new OAuthError(403, 'invalid_request', problem)
  }

  function refreshTokenFromCookie(request: FastifyRequest): string | undefined {
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
        throw new OAuthError(400, 'unsupported_token_type', 'access tokens cannot be revoked; revoke the refresh token or log out')
      }
      if (looksLikeApiKey(request.body.token)) {
        await fastify.apiKeys.revokeByValue(request.body.token, request.ip)
        return {}
      }
      const { client } = resolveClient(fastify, request, request.body.client_id)
      const session = await fastify.sessions.findByRefreshToken(request.body.token)
      // RFC 7009 §2.1: a client may only revoke its own tokens.
      if (session && session.clientId === client.id) {
        const revoked = await fastify.sessions.revoke({ sessionId: session.sessionId }, 'token_revoked')
        if (revoked.length > 0) {
          await recordAuditEvent(fastify.db, {
            type: 'session_revoked',
            userId: session.userId,
            ip: request.ip,
            details: { sessionId: session.sessionId, via: 'revocation_endpoint' },
          })
        }
      }
      return {}
    },
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
        issuer: fastify.config.issuer,
        audience: fastify.config.audience,
        now: fastify.now(),
      })
    },
  )
}

export default oauth
