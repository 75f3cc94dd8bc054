import jwt from '@fastify/jwt'
import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import Value from 'typebox/value'
import { ACCESS_TOKEN_TYP } from '../features/tokens/access-tokens.js'
import { ACR_MFA } from '../shared/authentication-methods.js'
import { looksLikeApiKey } from '../features/api-keys/api-keys.js'
import { SIGNING_ALG } from '../features/signing-keys/signing-keys.js'
import type { Role } from '../generated/prisma/enums.js'
import { ApiError, insufficientUserAuthentication, invalidToken, type AuthenticationRequirement } from '../errors.js'
import { AccessTokenClaims } from '../features/tokens/access-token-claims.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: AccessTokenClaims
  }
}

/** Who a request acts for: a user through an access token, or a user's API key. */
export type Principal =
  | {
    kind: 'access_token'
    userId: string
    role: Role
    scopes: string[]
    sessionId: string
    clientId: string
    /** The session's authentication: RFC 8176 methods, when (epoch seconds) and the level met, if any. */
    amr: readonly string[]
    authTime: number
    acr: string | undefined
  }
  | { kind: 'api_key'; userId: string; role: Role; scopes: string[]; apiKeyId: string }

export interface AuthorizeOptions {
  /** Scopes the credential must carry (DESIGN §3.7); 403 insufficient_scope otherwise. */
  scopes?: string[]
  /** Whether API keys are accepted (Authorization: Bearer or X-API-Key). */
  apiKeys?: boolean
  role?: Role
  /**
   * The route acts on the account itself (a password, an address, factors,
   * keys, other users): the access token's authentication must be recent
   * (RECENT_AUTH_MAX_AGE_SECONDS), else 401 insufficient_user_authentication
   * and the client steps up. API keys are their own credential and pass.
   */
  recentAuthentication?: boolean
  /** An authentication context class the access token must assert (RFC 9470). */
  acr?: string
  /**
   * The route adds a way into the account (a passkey, an authenticator):
   * besides a recent authentication, an account that already has a second
   * factor must have proven one in this session (acr mfa, a login with it or
   * a step-up), else 401 insufficient_user_authentication naming the acr. A
   * password alone never adds a factor beside an existing one.
   */
  addsFactor?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route helps an admin whose token asserts no second factor to enrol
     * one (REQUIRE_MFA_FOR_ADMINS); every other route refuses such a token.
     */
    secondFactorEnrolment?: boolean
  }
  interface FastifyInstance {
    /** Requires a valid, unrevoked access token: sets `request.user` (its claims) and `request.principal`. */
    authenticate(request: FastifyRequest, reply?: FastifyReply): Promise<void>
    /** A preHandler that admits the credentials, scopes and role a route declares. */
    authorize(options: AuthorizeOptions): preHandlerHookHandler
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

/** RFC 6750 §2.1 with RFC 7235 §2.1's case-insensitive scheme: `Bearer` in any case, then a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
/** A revocation list older than this may miss revocations made on other instances. */
const MAX_REVOCATION_STALENESS_MS = 5_000
const VERIFIED_TOKEN_CACHE_SIZE = 10_000

/**
 * Request-side verification of access tokens through @fastify/jwt (fast-jwt):
 * one pinned algorithm, issuer, audience and typ; the key chosen by kid among
 * published keys only (never from the token's jku/x5u/jwk headers). Verified
 * tokens are cached by the whole token, until their exp. API keys are looked
 * up on every request, so revocation counts at once.
 */
async function authentication (fastify: FastifyInstance) {
  const { config, keys, revocations, apiKeys } = fastify
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
      requiredClaims: AccessTokenClaims.required,
      // Successes are cached in front of @fastify/jwt (below); failures are
      // not cached at all: a token not yet valid must not stay refused.
      cache: false,
      errorCacheTTL: -1,
      // The token as BEARER reads it, so both agree on what the credential is.
      extractToken: (request: FastifyRequest) => BEARER.exec(request.headers.authorization ?? '')?.[1],
    },
  })
  fastify.decorateRequest('principal', null)

  /**
   * In front of @fastify/jwt: a hit skips its per-request work (decoding the
   * token, the key callback, merging options, hashing the token for
   * fast-jwt's own cache) and every promise: a request whose token is cached
   * is admitted synchronously. An entry serves only until the token's exp and
   * while its key is still published; anything else goes through jwtVerify,
   * which gives the precise error. Only verified tokens are cached, with the
   * principal they grant (frozen: shared by every request of the token).
   *
   * Found by the token's signature (its last segment): hashing a whole JWT
   * as a Map key took about 2 µs a request here, the signature's 86
   * characters a fraction of that. An entry holds the whole token and serves
   * that exact token only: another one with the same signature (a payload
   * edited under a copied signature) misses and goes through jwtVerify.
   */
  const verified = new LRUCache<string, VerifiedToken>({ max: VERIFIED_TOKEN_CACHE_SIZE })
  const cacheKey = (token: string) => token.slice(token.lastIndexOf('.') + 1)

  function cachedToken (credential: string): VerifiedToken | undefined {
    const key = cacheKey(credential)
    const hit = verified.get(key)
    if (hit === undefined || hit.token !== credential) return undefined
    if (hit.claims.exp * 1000 > Date.now() && keys.publicKeyPem(hit.kid) !== undefined) return hit
    verified.delete(key)
    return undefined
  }

  async function verifyToken (request: FastifyRequest, credential: string): Promise<VerifiedToken> {
    try {
      await request.jwtVerify()
    } catch (error) {
      const code = (error as { code?: string }).code
      throw invalidToken(code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' ? 'the access token expired' : 'the access token is invalid')
    }
    const claims = request.user
    // Signed by us, yet the claims' types are checked too: code downstream
    // relies on them, and a key compromise must not become a 500.
    if (!Value.Check(AccessTokenClaims, claims)) throw invalidToken('the access token is invalid')
    const kid = (JSON.parse(Buffer.from(credential.slice(0, credential.indexOf('.')), 'base64url').toString()) as { kid: string }).kid
    const token: VerifiedToken = Object.freeze({
      token: credential,
      claims: Object.freeze(claims),
      kid,
      principal: principalOf(claims),
      needsSecondFactor: config.mfa.requireForAdmins && claims.role === 'admin' && claims.acr !== ACR_MFA,
    })
    verified.set(cacheKey(credential), token)
    return token
  }

  /**
   * What every request with a verified token checks, from the cache or not:
   * issued in the past, revocation state fresh, not revoked, and an admin
   * token without a second factor only where one is enrolled.
   */
  function admitToken (request: FastifyRequest, token: VerifiedToken): void {
    const { claims } = token
    if (claims.iat * 1000 > fastify.now() + 60_000) throw invalidToken('the access token is not yet valid')
    if (revocations.isStale(MAX_REVOCATION_STALENESS_MS)) {
      throw new ApiError('revocation_state_unavailable', 'cannot confirm the token is not revoked; retry shortly', {
        'retry-after': '1',
      })
    }
    const refusal = revocations.refusal(claims)
    if (refusal) throw invalidToken(`the access token was revoked (${refusal})`)
    if (token.needsSecondFactor && request.routeOptions.config.secondFactorEnrolment !== true) {
      throw insufficientUserAuthentication('admins must sign in with a second factor: enrol one, then sign in again', { acr: ACR_MFA })
    }
    request.user = claims
    request.principal = token.principal
  }

  /** Refuses an access token whose authentication is weaker or older than `requirement` asks (RFC 9470 §3). */
  function checkAuthentication (principal: Principal, requirement: AuthenticationRequirement): void {
    if (principal.kind !== 'access_token') return
    if (requirement.acr !== undefined && principal.acr !== requirement.acr) {
      throw insufficientUserAuthentication('this needs a stronger authentication', requirement)
    }
    if (requirement.maxAge !== undefined && fastify.now() / 1000 - principal.authTime > requirement.maxAge) {
      throw insufficientUserAuthentication('this needs a recent authentication: sign in again or step up', requirement)
    }
  }

  /** The access token of `Authorization: Bearer`; refuses a missing header, another scheme, and API keys unless `apiKeys`. */
  function bearerCredential (request: FastifyRequest, apiKeys: boolean): BearerCredential {
    const header = request.headers.authorization
    if (header === undefined) throw invalidToken(null)
    // A token already verified, sent as "Bearer <token>" exactly, is what
    // BEARER would extract: the cache holds only tokens BEARER extracted.
    // Anything else (another spelling, spaces, a token not cached) is
    // parsed by BEARER, whose run over a whole JWT is the slow part.
    if (header.startsWith('Bearer ')) {
      const credential = header.slice(7)
      const cached = cachedToken(credential)
      if (cached !== undefined) return { accessToken: credential, cached }
    }
    const credential = BEARER.exec(header)?.[1]
    if (!credential) throw invalidToken('expected a Bearer access token')
    if (looksLikeApiKey(credential)) {
      if (apiKeys) return { apiKey: credential }
      throw invalidToken('API keys are not accepted here')
    }
    return { accessToken: credential }
  }

  /** Admits the request's access token: undefined when done synchronously (a cached token), else a promise. Throws a refusal. */
  function admitAccessToken (request: FastifyRequest, { accessToken, cached }: { accessToken: string; cached?: VerifiedToken }): Promise<void> | undefined {
    const token = cached ?? cachedToken(accessToken)
    if (token !== undefined) {
      admitToken(request, token)
      return undefined
    }
    return verifyToken(request, accessToken).then((verifiedToken) => admitToken(request, verifiedToken))
  }

  async function authenticate (request: FastifyRequest): Promise<void> {
    await admitAccessToken(request, bearerCredential(request, false) as { accessToken: string })
  }

  async function authenticateApiKey (request: FastifyRequest, key: string): Promise<void> {
    const principal = await apiKeys.verify(key)
    if (!principal) throw invalidToken('the API key is invalid, expired or revoked')
    request.principal = { kind: 'api_key', ...principal }
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('authorize', (options: AuthorizeOptions) => {
    const required = options.scopes ?? []
    const acceptApiKeys = options.apiKeys === true
    const recent = options.recentAuthentication === true || options.addsFactor === true
    const requirement: AuthenticationRequirement | undefined = recent || options.acr !== undefined
      ? {
          acr: options.acr,
          maxAge: recent ? config.mfa.recentAuthMaxAgeSeconds : undefined,
        }
      : undefined
    /** For addsFactor: undefined when no check is due (synchronous), else the check of the account's factors. */
    const checkFactorProof = (request: FastifyRequest): Promise<void> | undefined => {
      const principal = request.principal!
      if (options.addsFactor !== true || principal.kind !== 'access_token' || principal.acr === ACR_MFA) return undefined
      return fastify.secondFactors.hasSecondFactor(principal.userId).then((has) => {
        if (has) {
          throw insufficientUserAuthentication('this account has a second factor: step up with it before adding another way in', {
            acr: ACR_MFA,
            maxAge: config.mfa.recentAuthMaxAgeSeconds,
          })
        }
      })
    }
    /** Admits the request's credential: undefined when done synchronously, else a promise. Throws a refusal. */
    const admit = (request: FastifyRequest): Promise<void> | undefined => {
      const headerKey = request.headers['x-api-key']
      if (acceptApiKeys && typeof headerKey === 'string') return authenticateApiKey(request, headerKey)
      const credential = bearerCredential(request, acceptApiKeys)
      return 'apiKey' in credential ? authenticateApiKey(request, credential.apiKey) : admitAccessToken(request, credential)
    }
    const checkGrants = (request: FastifyRequest): void => {
      const principal = request.principal!
      const missing = required.filter((scope) => !principal.scopes.includes(scope))
      if (missing.length > 0) {
        throw new ApiError('insufficient_scope', `requires scope ${required.join(' ')}`, {
          'www-authenticate': `Bearer error="insufficient_scope", scope="${required.join(' ')}"`,
        })
      }
      if (options.role && principal.role !== options.role) {
        throw new ApiError('forbidden', `requires the ${options.role} role`)
      }
      if (requirement !== undefined) checkAuthentication(principal, requirement)
    }
    // A callback hook, not an async one: a cached access token is admitted
    // with no promise and no extra turn of the microtask queue.
    return function authorize (request, _reply, done) {
      let pending: Promise<void> | undefined
      try {
        const admitted = admit(request)
        if (admitted === undefined) {
          checkGrants(request)
          pending = checkFactorProof(request)
        } else {
          pending = admitted.then(() => {
            checkGrants(request)
            return checkFactorProof(request)
          })
        }
      } catch (error) {
        done(error as Error)
        return
      }
      if (pending === undefined) done()
      else pending.then(() => done(), done)
    }
  })
}

/** What `Authorization: Bearer` carries: an access token (with its cache entry when the fast path found one) or an API key. */
type BearerCredential = { accessToken: string; cached?: VerifiedToken } | { apiKey: string }

/** A verified access token as the cache keeps it. */
interface VerifiedToken {
  /** The whole token, compared in full on every hit. */
  readonly token: string
  readonly claims: AccessTokenClaims
  readonly kid: string
  readonly principal: Principal
  /** An admin's token asserting no second factor while REQUIRE_MFA_FOR_ADMINS holds: admitted only to enrol one. */
  readonly needsSecondFactor: boolean
}

function principalOf (claims: AccessTokenClaims): Principal {
  const scopes = Object.freeze(claims.scope ? claims.scope.split(' ') : [])
  return Object.freeze({
    kind: 'access_token',
    userId: claims.sub,
    role: claims.role,
    scopes: scopes as string[],
    sessionId: claims.sid,
    clientId: claims.client_id,
    amr: Object.freeze([...claims.amr]),
    authTime: claims.auth_time,
    acr: claims.acr,
  })
}

export default fp(authentication, { name: 'authentication', dependencies: ['config', 'keys', 'revocation', 'api-keys', 'second-factors'] })
