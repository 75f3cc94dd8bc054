import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { verifyAccessToken, splitScope } from './access-token.js'
import { readCredential } from './credentials.js'
import { IssuerDiscovery } from './discovery.js'
import { IssuerUnavailableError, ResourceAuthError } from './errors.js'
import { Introspector } from './introspection.js'
import { IssuerKeys } from './jwks.js'
import { SecurityEventStream } from './security-events.js'
import type { ApiKeyAuth, RequireAuthOptions, ResourceAuth, ResourceServerOptions, UserAuth } from './types.js'

export { ACCESS_TOKEN_TYP } from './access-token.js'
export { IssuerUnavailableError, ResourceAuthError, type ResourceAuthErrorCode } from './errors.js'
export { metadataUrl } from './discovery.js'
export { tokenDigest } from './introspection.js'
export { ssfConfigurationUrl, type SecurityEvent, type SecurityEventsCredential, type SecurityEventsHealth, type SecurityEventsOptions, type SecurityEventStream } from './security-events.js'
export type {
  ApiKeyAuth,
  IntrospectionAnswer,
  RequireAuthOptions,
  ResourceAuth,
  ResourceServerOptions,
  UserAuth,
} from './types.js'

/** What the plugin decorates the instance with, beside `requireAuth`. */
export interface ResourceServer {
  /** Establishes who a request acts for, as the route options ask; throws ResourceAuthError. */
  authenticate(request: FastifyRequest, options?: RequireAuthOptions): Promise<ResourceAuth>
  /** The issuer's keys (fetch counters for diagnostics). */
  readonly keys: IssuerKeys
  /** The introspection client, when configured. */
  readonly introspector: Introspector | undefined
  /** The security-event stream, when `events` is configured: `health()` says where it stands. */
  readonly events: SecurityEventStream | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A preHandler that admits requests carrying a credential the options
     * accept, and sets `request.auth`. E.g.
     * `{ preHandler: fastify.requireAuth({ scopes: ['links:read'], allowApiKeys: true }) }`.
     */
    requireAuth(options?: RequireAuthOptions): preHandlerAsyncHookHandler
    resourceServer: ResourceServer
  }
  interface FastifyRequest {
    /** Who the request acts for; set by `requireAuth`, null on routes without it. */
    auth: ResourceAuth | null
  }
}

const DEFAULTS = {
  algorithms: ['ES256'],
  clockToleranceSeconds: 5,
  apiKeyPrefix: 'tak_',
  timeoutMs: 3_000,
  jwks: { cacheMaxAgeMs: 300_000, cooldownMs: 30_000, failureBackoffMs: 5_000 },
  introspection: { positiveTtlMs: 30_000, negativeTtlMs: 5_000, sensitiveTtlMs: 1_000, maxEntries: 10_000 },
} as const

/**
 * Resource-server side of the platform's auth: verifies RFC 9068 access
 * tokens offline against the issuer's published keys, accepts API keys
 * through RFC 7662 introspection with a short cache, and on sensitive routes
 * asks the issuer whether an access token's session is still live.
 */
async function resourceServer (fastify: FastifyInstance, options: ResourceServerOptions) {
  const issuer = checkIssuer(options.issuer)
  const audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience]
  if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('resource-server: audience must be a non-empty string or list of strings')
  }
  const algorithms = [...(options.algorithms ?? DEFAULTS.algorithms)]
  if (algorithms.length === 0 || algorithms.some((alg) => alg === 'none' || /^HS/i.test(alg))) {
    // The keys come from a public JWKS: a symmetric or empty algorithm has no business here.
    throw new TypeError('resource-server: algorithms must list asymmetric JWS algorithms only (e.g. ES256, EdDSA)')
  }
  if (sendsKeyInClear(issuer, options)) {
    fastify.log.warn({ issuer }, 'resource-server: the issuer is plain http on a non-loopback host; the introspection key would travel in clear')
  }
  const fetchImpl = options.fetch ?? globalThis.fetch
  const now = options.now ?? Date.now
  const timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs
  const realm = options.realm
  const apiKeyPrefix = options.apiKeyPrefix ?? DEFAULTS.apiKeyPrefix
  const jwksOptions = { ...DEFAULTS.jwks, ...options.jwks }
  const introspectionOptions = options.introspection
    ? { ...DEFAULTS.introspection, ...options.introspection }
    : undefined
  if (introspectionOptions && !introspectionOptions.credential) {
    throw new TypeError('resource-server: introspection.credential (an API key with the introspect scope) is required')
  }

  const discovery = new IssuerDiscovery({
    issuer,
    overrides: { jwksUri: options.endpoints?.jwksUri, introspectionEndpoint: options.endpoints?.introspectionEndpoint },
    needsIntrospection: introspectionOptions !== undefined,
    fetch: fetchImpl,
    timeoutMs,
    backoffMs: jwksOptions.failureBackoffMs,
  })
  const keys = new IssuerKeys({
    jwksUri: async () => (await discovery.get()).jwksUri,
    cacheMaxAgeMs: jwksOptions.cacheMaxAgeMs,
    cooldownMs: jwksOptions.cooldownMs,
    failureBackoffMs: jwksOptions.failureBackoffMs,
    timeoutMs,
    fetch: fetchImpl,
  })
  const introspector = introspectionOptions
    ? new Introspector({
      endpoint: async () => {
        const endpoint = (await discovery.get()).introspectionEndpoint
        if (!endpoint) throw new IssuerUnavailableError('the issuer publishes no introspection_endpoint')
        return endpoint
      },
      credential: introspectionOptions.credential,
      positiveTtlMs: introspectionOptions.positiveTtlMs,
      negativeTtlMs: introspectionOptions.negativeTtlMs,
      maxEntries: introspectionOptions.maxEntries,
      timeoutMs,
      fetch: fetchImpl,
      now,
    })
    : undefined

  const events = options.events
    ? new SecurityEventStream({
      ...options.events,
      issuer,
      audience,
      algorithms,
      clockToleranceSeconds: options.clockToleranceSeconds ?? DEFAULTS.clockToleranceSeconds,
      getKey: keys.getKey,
      fetch: fetchImpl,
      timeoutMs,
      now,
      log: fastify.log,
    })
    : undefined

  async function authenticateUser (token: string, route: RequireAuthOptions): Promise<UserAuth> {
    const verified = await verifyAccessToken(token, {
      issuer,
      audience,
      algorithms,
      clockToleranceSeconds: options.clockToleranceSeconds ?? DEFAULTS.clockToleranceSeconds,
      getKey: keys.getKey,
      now,
      realm,
    })
    // A session the issuer said is revoked (DESIGN §3.18): refused on every route, sensitive or not.
    if (events?.isRevoked(verified.sessionId)) throw new ResourceAuthError('invalid_token', 'the access token was revoked', { realm })
    if (!route.sensitive) return { ...verified, introspected: false }
    // The stream is up to date: a revocation would already be known.
    if (events?.isHealthy()) return { ...verified, introspected: false }
    if (!introspector) {
      throw new IssuerUnavailableError('the security-event stream is down and no introspection is configured')
    }
    const answer = await introspector!.introspect(token, { maxAgeMs: introspectionOptions!.sensitiveTtlMs, hint: 'access_token' })
    const live =
      answer.active &&
      (answer.token_type === undefined || answer.token_type === 'access_token') &&
      answer.sub === verified.userId &&
      (answer.sid === undefined || answer.sid === verified.sessionId)
    if (!live) throw new ResourceAuthError('invalid_token', 'the access token was revoked', { realm })
    return { ...verified, introspected: true }
  }

  async function authenticateApiKey (key: string, route: RequireAuthOptions): Promise<ApiKeyAuth> {
    if (!route.allowApiKeys) throw new ResourceAuthError('invalid_token', 'API keys are not accepted here', { realm })
    const maxAgeMs = route.sensitive
      ? Math.min(introspectionOptions!.positiveTtlMs, introspectionOptions!.sensitiveTtlMs)
      : introspectionOptions!.positiveTtlMs
    const answer = await introspector!.introspect(key, { maxAgeMs, hint: 'api_key' })
    // Only an API key counts here: a refresh token must never work as a bearer credential.
    if (!answer.active || answer.token_type !== 'api_key' || !answer.sub) {
      throw new ResourceAuthError('invalid_token', 'the API key is invalid, expired or revoked', { realm })
    }
    return { kind: 'api_key', userId: answer.sub, scopes: splitScope(answer.scope), sessionId: null, expiresAt: answer.exp ?? null }
  }

  async function authenticate (request: FastifyRequest, route: RequireAuthOptions = {}): Promise<ResourceAuth> {
    const credential = readCredential(request, { apiKeyPrefix, realm })
    let auth: ResourceAuth
    try {
      auth = credential.kind === 'api_key' ? await authenticateApiKey(credential.value, route) : await authenticateUser(credential.value, route)
    } catch (error) {
      if (error instanceof IssuerUnavailableError) {
        request.log.warn({ err: error }, 'resource-server: the issuer could not be asked')
        throw new ResourceAuthError('temporarily_unavailable', 'the credential cannot be checked right now; retry shortly', {
          retryAfterSeconds: Math.max(1, Math.ceil(jwksOptions.failureBackoffMs / 1000)),
          cause: error,
        })
      }
      throw error
    }
    const required = route.scopes ?? []
    const missing = required.filter((scope) => !auth.scopes.includes(scope))
    if (missing.length > 0) {
      throw new ResourceAuthError('insufficient_scope', `requires scope ${required.join(' ')}`, { realm, scope: required })
    }
    if (auth.kind === 'user') checkAuthentication(auth, route)
    return auth
  }

  /** RFC 9470: refuses a token whose authentication is weaker (acr) or older (auth_time) than the route asks. */
  function checkAuthentication (auth: UserAuth, route: RequireAuthOptions): void {
    const acrValues = route.acr === undefined ? undefined : typeof route.acr === 'string' ? [route.acr] : route.acr
    const challenge = { realm, acrValues, maxAge: route.maxAge }
    if (acrValues !== undefined && (auth.acr === undefined || !acrValues.includes(auth.acr))) {
      throw new ResourceAuthError('insufficient_user_authentication', 'this needs a stronger authentication', challenge)
    }
    if (route.maxAge !== undefined) {
      const tolerance = options.clockToleranceSeconds ?? DEFAULTS.clockToleranceSeconds
      if (auth.authTime === undefined || now() / 1000 - auth.authTime > route.maxAge + tolerance) {
        throw new ResourceAuthError('insufficient_user_authentication', 'this needs a more recent authentication', challenge)
      }
    }
  }

  fastify.decorateRequest('auth', null)
  fastify.decorate('resourceServer', { authenticate, keys, introspector, events } satisfies ResourceServer)
  fastify.decorate('requireAuth', (route: RequireAuthOptions = {}): preHandlerAsyncHookHandler => {
    if ((route.allowApiKeys || (route.sensitive && !events)) && !introspector) {
      throw new TypeError('resource-server: allowApiKeys needs the introspection option, and sensitive the introspection or the events option')
    }
    for (const scope of route.scopes ?? []) {
      if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)) throw new TypeError(`resource-server: "${scope}" is not a valid scope token`)
    }
    if ((route.acr !== undefined || route.maxAge !== undefined) && route.allowApiKeys) {
      // An API key carries no user authentication to judge: such a route would refuse every key, or admit them all.
      throw new TypeError('resource-server: acr and maxAge judge a user\'s authentication; they cannot be combined with allowApiKeys')
    }
    if (route.maxAge !== undefined && !(Number.isFinite(route.maxAge) && route.maxAge >= 0)) {
      throw new TypeError('resource-server: maxAge must be a number of seconds, 0 or more')
    }
    for (const acr of typeof route.acr === 'string' ? [route.acr] : route.acr ?? []) {
      if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(acr)) throw new TypeError(`resource-server: "${acr}" is not a valid acr value`)
    }
    const frozen = { ...route, scopes: [...(route.scopes ?? [])] }
    return async function requireAuth (request) {
      request.auth = await authenticate(request, frozen)
    }
  })

  if (events) {
    fastify.addHook('onReady', async () => events.start())
    fastify.addHook('onClose', async () => events.close())
  }

  if (options.prefetch ?? true) {
    fastify.addHook('onReady', async () => {
      try {
        await keys.load()
      } catch (error) {
        fastify.log.warn({ err: error }, 'resource-server: could not fetch the issuer\'s keys at start; will retry on demand')
      }
    })
  }
}

/** An introspection credential sent to an http:// issuer that is not this machine. */
function sendsKeyInClear (issuer: string, options: ResourceServerOptions): boolean {
  const url = new URL(issuer)
  return options.introspection !== undefined && url.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
}

function checkIssuer (issuer: string): string {
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new TypeError(`resource-server: issuer "${issuer}" is not a URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('resource-server: issuer must be an http(s) URL')
  return issuer
}

/** The plugin: `await fastify.register(resourceServerPlugin, { issuer, audience, ... })`. */
export const resourceServerPlugin = fp(resourceServer, { name: 'resource-server', fastify: '5.x' })
export default resourceServerPlugin
