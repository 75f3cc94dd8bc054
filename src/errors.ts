import { CATALOGUES } from './features/catalogues.js'

/**
 * The error model (DESIGN §4). ERROR_STATUS is the catalogue: every code
 * the API answers with, and its HTTP status: the core codes here, a
 * capability's in its catalogue (features/<capability>/catalogue.ts). Domain modules throw DomainError with a code; the HTTP layer throws
 * ApiError for what only it knows (missing credentials, unknown routes and
 * ids, CSRF). The error handler
 * (http/error-handler.ts) answers both: in the one error shape, or on
 * the OAuth endpoints in RFC 6749 §5.2 shape.
 */
/** The codes of no one capability: RFC 6749's, the HTTP layer's and the service's own. */
const CORE_ERRORS = {
  // RFC 6749 §5.2, RFC 7009 §2.2.1
  invalid_request: 400,
  invalid_grant: 400,
  invalid_scope: 400,
  unsupported_grant_type: 400,
  unsupported_token_type: 400,
  // Load shedding: the password queue is full (RFC 6749 §4.1.2.1's code).
  temporarily_unavailable: 503,
  // Credentials (RFC 6750 §3, RFC 9470 §3): none sent (the bare challenge), a bad or revoked one, one too weak or old for the route.
  unauthorized: 401,
  invalid_token: 401,
  insufficient_user_authentication: 401,
  // An unknown client_id (RFC 6749 §5.2).
  invalid_client: 401,
  // A credential without the route's scope (RFC 6750 §3.1) or role; a cookie request failing the CSRF defence (DESIGN §3.6).
  insufficient_scope: 403,
  forbidden: 403,
  csrf_check_failed: 403,
  // Requests the schemas or Fastify refuse: a body, query or parameter off its schema; JSON that does not parse;
  // a body over the limit; a content type the route does not take; anything else malformed; a list's cursor it did not issue.
  validation_failed: 400,
  invalid_json: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  bad_request: 400,
  invalid_cursor: 400,
  // An unknown route.
  not_found: 404,
  // Budgets of attempts (per IP, per account).
  rate_limited: 429,
  // The service: a bug (nothing said about it), the database or the revocation state out of reach, the event loop overloaded.
  internal_error: 500,
  database_unavailable: 503,
  revocation_state_unavailable: 503,
  service_overloaded: 503,
} as const

type Merged<T> = (T extends unknown ? (part: T) => void : never) extends (all: infer All) => void ? All : never
type CatalogueErrors = Merged<Extract<(typeof CATALOGUES)[number], { errors: object }>['errors']>

/** The catalogue: the core codes and every capability's (features/catalogues.ts), each with its one status. */
export const ERROR_STATUS = mergeErrors() as typeof CORE_ERRORS & CatalogueErrors

function mergeErrors (): Record<string, number> {
  const merged: Record<string, number> = { ...CORE_ERRORS }
  for (const catalogue of CATALOGUES) {
    if (!('errors' in catalogue)) continue
    for (const [code, status] of Object.entries(catalogue.errors)) {
      if (Object.hasOwn(merged, code)) throw new Error(`error code ${code} is declared twice`)
      merged[code] = status
    }
  }
  return merged
}
export type ErrorCode = keyof typeof ERROR_STATUS

/** Every code an answer of the API can carry (the error schema's enum in the OpenAPI document). */
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[]

/**
 * On the OAuth endpoints (RFC 6749 §5.2 shape), codes that are neither RFC
 * codes nor this service's documented extensions (mfa_required,
 * email_not_verified...) are answered as the RFC code that covers them.
 */
export const OAUTH_ERROR_ALIASES = {
  validation_failed: 'invalid_request',
  invalid_json: 'invalid_request',
  body_too_large: 'invalid_request',
  unsupported_media_type: 'invalid_request',
  bad_request: 'invalid_request',
  csrf_check_failed: 'invalid_request',
  internal_error: 'server_error',
  database_unavailable: 'temporarily_unavailable',
} as const satisfies Partial<Record<ErrorCode, string>>
export type OAuthErrorAlias = (typeof OAUTH_ERROR_ALIASES)[keyof typeof OAUTH_ERROR_ALIASES]

/** Whether `value` is a code the service answers with (a code of the catalogue, or an alias the OAuth endpoints answer). */
export function isServiceErrorCode (value: unknown): value is ErrorCode | OAuthErrorAlias {
  return typeof value === 'string' && (Object.hasOwn(ERROR_STATUS, value) || Object.values(OAUTH_ERROR_ALIASES).includes(value as OAuthErrorAlias))
}

/** A failure of the domain, with no HTTP in it: a code of ERROR_STATUS and a message for people. */
export class DomainError extends Error {
  override name = 'DomainError'
  constructor (
    readonly code: ErrorCode,
    message: string,
    /** When the caller may try again (load shedding), in seconds. */
    readonly retryAfterSeconds?: number,
    /** Further members of the error body (mfa_required's mfa_token and factors); never a stored secret. */
    readonly fields?: ErrorFields
  ) {
    super(message)
  }
}

/** Members an error body carries beside its code and message. */
export type ErrorFields = Readonly<Record<string, string | readonly string[]>>

/** An error with a code of the catalogue (its status follows), and the headers the error handler answers with. */
export class ApiError extends Error {
  override name = 'ApiError'
  readonly statusCode: number
  constructor (
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly fields?: ErrorFields
  ) {
    super(message)
    this.statusCode = ERROR_STATUS[code]
  }

  static from (error: DomainError): ApiError {
    const headers: Record<string, string> = error.retryAfterSeconds === undefined ? {} : { 'retry-after': String(error.retryAfterSeconds) }
    return new ApiError(error.code, error.message, headers, error.fields)
  }
}

/**
 * 401 for a missing or bad access token, with the RFC 6750 §3 challenge. A
 * request without credentials gets the bare challenge (no error code, §3.1).
 */
export function invalidToken (description: string | null): ApiError {
  const challenge = description === null ? 'Bearer' : `Bearer error="invalid_token", error_description="${description}"`
  return new ApiError(description === null ? 'unauthorized' : 'invalid_token', description ?? 'authentication required', {
    'www-authenticate': challenge,
  })
}

/** What an authentication must meet for a route (RFC 9470 §3): a level, a recency, or both. */
export interface AuthenticationRequirement {
  acr?: string | undefined
  maxAge?: number | undefined
}

/**
 * 401 for an access token whose authentication is too weak or too old for
 * the route, with RFC 9470 §3's challenge naming what would do: the client
 * authenticates again (a step-up) and retries with the new token.
 */
export function insufficientUserAuthentication (description: string, requirement: AuthenticationRequirement): ApiError {
  const parts = ['Bearer error="insufficient_user_authentication"', `error_description="${description}"`]
  if (requirement.acr !== undefined) parts.push(`acr_values="${requirement.acr}"`)
  if (requirement.maxAge !== undefined) parts.push(`max_age=${requirement.maxAge}`)
  return new ApiError('insufficient_user_authentication', description, { 'www-authenticate': parts.join(', ') })
}

/**
 * RFC 6749 §4.1.2.1 and §5.2: error_description holds only %x20-21 /
 * %x23-5B / %x5D-7E (printable ASCII but `"` and `\`). Anything else in a
 * message becomes its nearest allowed form.
 */
export function oauthErrorDescription (message: string): string {
  return message.replace(/"/g, "'").replace(/\\/g, '/').replace(/§/g, 'section ').replace(/[^\x20-\x7E]/g, '?')
}
