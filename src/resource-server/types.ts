/** Public types of the resource-server plugin. */

import type { SecurityEventsOptions } from './security-events.js'

/** Who a request acts for, as established by the plugin (`request.auth`). */
export type ResourceAuth = UserAuth | ApiKeyAuth

/** A user acting through their own access token (RFC 9068 JWT, verified offline). */
export interface UserAuth {
  kind: 'user'
  /** `sub`: the user id. */
  userId: string
  /** `role` claim of this platform's tokens (`user` or `admin`); undefined when the token has none. */
  role: string | undefined
  /** `scope`, split on spaces. */
  scopes: readonly string[]
  /** `sid`: the login session the token belongs to. */
  sessionId: string
  /** `client_id`: the app the user signed in with (`web`, `mobile`, …). */
  clientId: string
  /** `jti`. */
  tokenId: string
  /** `exp`, in seconds since the epoch. */
  expiresAt: number
  /** `amr`: how the user authenticated (RFC 8176 values: pwd, otp, hwk, swk, user, mfa); empty when the token has none. */
  amr: readonly string[]
  /** `auth_time`: when the user last authenticated, in seconds since the epoch; undefined when the token has none. */
  authTime: number | undefined
  /** `acr`: the authentication context class the login met; undefined when none is asserted. */
  acr: string | undefined
  /** true when the route is sensitive and the issuer confirmed just now (introspection) that the session is live. */
  introspected: boolean
}

/** A third party acting for a user through one of the user's API keys (checked by introspection). */
export interface ApiKeyAuth {
  kind: 'api_key'
  /** The key's owner (`sub` of the introspection response). */
  userId: string
  scopes: readonly string[]
  /** API keys have no session. */
  sessionId: null
  /** `exp` of the key in seconds since the epoch, or null for a key that does not expire. */
  expiresAt: number | null
}

/** What a route requires (argument of `fastify.requireAuth`). */
export interface RequireAuthOptions {
  /** Scopes the credential must all carry; otherwise 403 insufficient_scope. Default none. */
  scopes?: readonly string[]
  /**
   * Ask the issuer (introspection) whether an access token's session is still
   * live, so a revocation counts within `introspection.sensitiveTtlMs` instead
   * of at the token's expiry. Needs `introspection` in the plugin options, or
   * `events`: while the security-event stream is healthy a revocation already
   * counts within a second and no introspection is made; while it is down,
   * introspection (or, without it, 503).
   */
  sensitive?: boolean
  /** Accept API keys (`Authorization: Bearer tak_…` or `X-API-Key`). Default false. Needs `introspection`. */
  allowApiKeys?: boolean
  /**
   * The authentication context class(es) the token's `acr` must be one of,
   * e.g. the issuer's `urn:token-auth:acr:mfa`; otherwise 401
   * insufficient_user_authentication with `acr_values` (RFC 9470 §3). Not with allowApiKeys.
   */
  acr?: string | readonly string[]
  /**
   * The oldest authentication accepted, in seconds before now (`auth_time`);
   * otherwise 401 insufficient_user_authentication with `max_age` (RFC 9470 §3). Not with allowApiKeys.
   */
  maxAge?: number
}

/** The RFC 7662 answer as the plugin reads it. */
export type IntrospectionAnswer =
  | { active: false }
  | {
    active: true
    token_type?: string
    sub?: string
    scope?: string
    exp?: number
    sid?: string
    client_id?: string
  }

export interface ResourceServerOptions {
  /** The issuer's identifier (its base URL), exactly as in the tokens' `iss`. */
  issuer: string
  /** The audience (`aud`) this service accepts: its own identifier. */
  audience: string | readonly string[]
  /** Signature algorithms accepted; anything else is refused before any key is looked up. Default ['ES256']. */
  algorithms?: readonly string[]
  /** Tolerated clock skew for exp, nbf and iat. Default 5 s. */
  clockToleranceSeconds?: number
  /** `realm` of the WWW-Authenticate challenges. Default none. */
  realm?: string
  /** Prefix that marks a Bearer credential as an API key rather than a JWT. Default 'tak_'. */
  apiKeyPrefix?: string
  /** Endpoints, when they should not be discovered from the issuer's RFC 8414 metadata. */
  endpoints?: { jwksUri?: string; introspectionEndpoint?: string }
  jwks?: {
    /** Keys are refetched after this long (jose cacheMaxAge). Default 300 000 ms. */
    cacheMaxAgeMs?: number
    /** After a fetch, an unknown kid waits this long before it can cause another fetch. Default 30 000 ms. */
    cooldownMs?: number
    /** After a failed fetch (issuer down), no fetch is tried for this long; known keys keep working. Default 5 000 ms. */
    failureBackoffMs?: number
  }
  /**
   * RFC 7662 introspection, for API keys and sensitive routes. `credential`
   * is an API key of the issuer holding the `introspect` scope.
   */
  introspection?: {
    credential: string
    /** How long an active answer is trusted for an API key. Default 30 000 ms. */
    positiveTtlMs?: number
    /** How long an inactive answer is remembered. Default 5 000 ms. */
    negativeTtlMs?: number
    /** How long an active answer is trusted on a sensitive route. Default 1 000 ms. */
    sensitiveTtlMs?: number
    /** Bound on the number of cached answers. Default 10 000. */
    maxEntries?: number
  }
  /**
   * Consume the issuer's security events (DESIGN §3.18): the plugin creates
   * its own poll stream at start, long-polls it, and refuses the access
   * tokens of a revoked session within about a second on every route; while
   * the stream works, sensitive routes need no introspection, and when it is
   * down for `staleAfterMs` they fall back to it. Deleted on close.
   */
  events?: SecurityEventsOptions
  /** Timeout of every request to the issuer (metadata, JWKS, introspection). Default 3 000 ms. */
  timeoutMs?: number
  /** Fetch the metadata and keys when the server starts (failures are logged, not fatal). Default true. */
  prefetch?: boolean
  /** The clock (ms since the epoch) for token times and the introspection cache; for tests. */
  now?: () => number
  /** The fetch implementation; for tests. Default globalThis.fetch. */
  fetch?: typeof fetch
}
