import jwt from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from '../../domain/access-tokens.js'
import { SIGNING_ALG } from '../../domain/signing-keys.js'
import { ApiError, invalidToken } from '../../errors.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: requires a valid, unrevoked access token and sets `request.user`. */
    authenticate(request: FastifyRequest, reply?: FastifyReply): Promise<void>
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/
/** A revocation list older than this may miss revocations made on other instances. */
const MAX_REVOCATION_STALENESS_MS = 5_000
const VERIFIED_TOKEN_CACHE_SIZE = 10_000

/**
 * Request-side verification of access tokens through @fastify/jwt (fast-jwt):
 * one pinned algorithm, issuer, audience and typ; the key chosen by kid among
 * published keys only (never from the token's jku/x5u/jwk headers). Verified
 * tokens are cached by the whole token, until their exp.
 */
async function authentication(fastify: FastifyInstance) {
  const { config, keys, revocations } = fastify
  await fastify.register(jwt, {
    secret: {
      public: (_request: FastifyRequest, token: unknown) => {
        const kid = (token as { header?: { kid?: unknown } }).header?.kid
        const pem = typeof kid === 'string' ? keys.publicKeyPem(kid) : undefined
        if (!pem) throw new Error('unknown key id')
        return Promise.resolve(pem)
      },
    },
    decode: { complete: true },
    verify: {
      algorithms: [SIGNING_ALG],
      allowedIss: config.issuer,
      allowedAud: config.audience,
      checkTyp: ACCESS_TOKEN_TYP,
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'sid', 'client_id', 'role'],
      cache: VERIFIED_TOKEN_CACHE_SIZE,
      // Failures are not cached: a token not yet valid must not stay refused.
      errorCacheTTL: -1,
    },
  })

  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization
    if (header === undefined) throw invalidToken(null)
    if (!BEARER.test(header)) throw invalidToken('expected a Bearer access token')
    try {
      await request.jwtVerify()
    } catch (error) {
      const code = (error as { code?: string }).code
      throw invalidToken(code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' ? 'the access token expired' : 'the access token is invalid')
    }
    const claims = request.user
    if (claims.iat * 1000 > fastify.now() + 60_000) throw invalidToken('the access token is not yet valid')
    if (revocations.isStale(MAX_REVOCATION_STALENESS_MS)) {
      throw new ApiError(503, 'revocation_state_unavailable', 'cannot confirm the token is not revoked; retry shortly', {
        'retry-after': '1',
      })
    }
    const refusal = revocations.refusal(claims)
    if (refusal) throw invalidToken(`the access token was revoked (${refusal})`)
  })
}

export default fp(authentication, { name: 'authentication', dependencies: ['config', 'keys', 'revocation'] })
