/**
 * RFC 6750 §3 errors of a resource server. They are thrown from the plugin's
 * preHandler and carry their status and `WWW-Authenticate` challenge in
 * `statusCode` and `headers`, which Fastify's default error handler applies;
 * a service with its own error handler maps `ResourceAuthError` to its error
 * shape and must copy `headers`.
 */

export type ResourceAuthErrorCode =
  /** 401 without an error code: the request carried no credentials (RFC 6750 §3.1). */
  | 'unauthorized'
  /** 400: more than one credential, or a malformed Authorization header. */
  | 'invalid_request'
  /** 401: expired, revoked, malformed, wrongly signed or otherwise unacceptable. */
  | 'invalid_token'
  /** 403: valid, but without the scopes the route requires. */
  | 'insufficient_scope'
  /** 401: valid, but the user's authentication is weaker or older than the route requires (RFC 9470 §3). */
  | 'insufficient_user_authentication'
  /** 503: the issuer (JWKS or introspection) could not be reached to decide. */
  | 'temporarily_unavailable'

const STATUS: Record<ResourceAuthErrorCode, number> = {
  unauthorized: 401,
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  insufficient_user_authentication: 401,
  temporarily_unavailable: 503,
}

export class ResourceAuthError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string>

  constructor (
    readonly code: ResourceAuthErrorCode,
    message: string,
    options: {
      realm?: string | undefined
      scope?: readonly string[]
      /** RFC 9470 §3: what a new authentication must meet. */
      acrValues?: readonly string[]
      maxAge?: number
      retryAfterSeconds?: number
      cause?: unknown
    } = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ResourceAuthError'
    this.statusCode = STATUS[code]
    this.headers = {}
    if (code === 'temporarily_unavailable') {
      // Not an RFC 6750 error: the credential may well be good. No challenge, a retry hint.
      this.headers['retry-after'] = String(options.retryAfterSeconds ?? 1)
      return
    }
    const params: string[] = []
    if (options.realm !== undefined) params.push(`realm=${quote(options.realm)}`)
    if (code !== 'unauthorized') {
      params.push(`error=${quote(code)}`, `error_description=${quote(message)}`)
    }
    if (code === 'insufficient_scope' && options.scope) params.push(`scope=${quote(options.scope.join(' '))}`)
    if (options.acrValues && options.acrValues.length > 0) params.push(`acr_values=${quote(options.acrValues.join(' '))}`)
    if (options.maxAge !== undefined) params.push(`max_age=${Math.floor(options.maxAge)}`)
    this.headers['www-authenticate'] = params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}`
  }
}

/**
 * An RFC 7235 quoted-string holding only what RFC 6750 §3 allows in
 * error_description and scope (%x20-21 / %x23-5B / %x5D-7E): no quotes,
 * backslashes or control characters, so nothing can break out of the header.
 */
function quote (value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '')}"`
}

/** The issuer could not be asked (down, timed out, or answered nonsense); the request gets 503. */
export class IssuerUnavailableError extends Error {
  constructor (message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'IssuerUnavailableError'
  }
}
