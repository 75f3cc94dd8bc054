/**
 * The error model (DESIGN §4). ERROR_STATUS is the catalogue: every code
 * the API answers with, and its HTTP status, so a new error is one line
 * here. Domain modules throw DomainError with a code; the HTTP layer throws
 * ApiError for what only it knows (missing credentials, unknown routes and
 * ids, CSRF). The error handler
 * (http/error-handler.ts) answers both: in the one error shape, or on
 * the OAuth endpoints in RFC 6749 §5.2 shape.
 */
export const ERROR_STATUS = {
  // RFC 6749 §5.2, RFC 7009 §2.2.1
  invalid_request: 400,
  invalid_grant: 400,
  invalid_scope: 400,
  unsupported_grant_type: 400,
  unsupported_token_type: 400,
  // Accounts (DESIGN §3.3)
  weak_password: 400,
  invalid_email: 400,
  invalid_credentials: 403,
  email_taken: 409,
  account_changed: 409,
  // Lists (keyset pagination), the admin API (DESIGN §3.8), API keys (§3.7)
  invalid_cursor: 400,
  self_lockout: 400,
  api_key_limit: 409,
  // Emailed links (DESIGN §3.11): expired, used, superseded, unknown or of another purpose.
  invalid_link_token: 400,
  user_disabled: 409,
  email_already_verified: 409,
  // RFC 6749 §5.2 allows extension codes; the password grant's answer under REQUIRE_EMAIL_VERIFICATION.
  email_not_verified: 400,
  // Second factors (DESIGN §3.12): the password grant's answer for an account with one (RFC 6749 §5.2 extension code),
  // a wrong code at enrolment, a factor already there or not there.
  mfa_required: 400,
  invalid_otp: 400,
  totp_already_enabled: 409,
  totp_not_enrolled: 404,
  // Passkeys (DESIGN §3.12): a challenge unknown, spent, expired or of another
  // user or purpose; a response that does not verify; an unknown passkey id;
  // a credential already registered; the per-user bound.
  passkey_challenge_invalid: 400,
  passkey_rejected: 400,
  passkey_not_found: 404,
  passkey_exists: 409,
  passkey_limit: 409,
  // A credential that signs in without the password (a passkey, an API key) asked for while the address is unverified.
  email_verification_required: 403,
  // Load shedding: the password queue is full (RFC 6749 §4.1.2.1's code).
  temporarily_unavailable: 503,

  // The HTTP layer's own answers.
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
  // a body over the limit; a content type the route does not take; anything else malformed.
  validation_failed: 400,
  invalid_json: 400,
  body_too_large: 413,
  unsupported_media_type: 415,
  bad_request: 400,
  invalid_expiry: 400,
  // Unknown routes and ids.
  not_found: 404,
  user_not_found: 404,
  session_not_found: 404,
  api_key_not_found: 404,
  // Budgets of attempts (per IP, per account).
  rate_limited: 429,
  // The service: a bug (nothing said about it), the database or the revocation state out of reach, the event loop overloaded,
  // the dashboard not built.
  internal_error: 500,
  database_unavailable: 503,
  revocation_state_unavailable: 503,
  service_overloaded: 503,
  dashboard_not_built: 503,
} as const satisfies Record<string, number>
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
