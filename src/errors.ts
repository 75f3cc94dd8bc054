/** An error with the HTTP status, stable code and headers the error handler answers with (DESIGN §4). */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** An RFC 6749 §5.2 error from an OAuth endpoint. */
export class OAuthError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description)
    this.name = 'OAuthError'
  }
}

/**
 * 401 for a missing or bad access token, with the RFC 6750 §3 challenge. A
 * request without credentials gets the bare challenge (no error code, §3.1).
 */
export function invalidToken(description: string | null): ApiError {
  const challenge = description === null ? 'Bearer' : `Bearer error="invalid_token", error_description="${description}"`
  return new ApiError(401, description === null ? 'unauthorized' : 'invalid_token', description ?? 'authentication required', {
    'www-authenticate': challenge,
  })
}
