import { isServiceErrorCode, type ErrorCode, type OAuthErrorAlias } from '../errors.js'
import type { AccessTokenClaims } from './client.js'

/**
 * Codes the SDK gives its own errors: no answer, an answer it cannot read, a
 * session it ended, a passkey step it cannot take, no WebCrypto for a
 * sign-in's PKCE (React Native without a polyfill, a page outside a secure context).
 */
export type ClientErrorCode = 'session_expired' | 'session_reused' | 'network_error' | 'invalid_response' | 'passkey_unavailable' | 'webcrypto_unavailable'

/**
 * What an AuthError's code can be: a code of the service's catalogue
 * (src/errors.ts, the same list its OpenAPI document names) or an RFC 6749
 * code its OAuth endpoints answer with, the SDK's own, or http_<status> for
 * an answer that carries none the SDK knows.
 */
export type AuthErrorCode = ErrorCode | OAuthErrorAlias | ClientErrorCode | `http_${number}`

/**
 * Typed errors a UI can act on. Every error the SDK throws is an AuthError;
 * `code` is stable and machine-readable, `status` the HTTP status (0 when no
 * answer arrived).
 */
export class AuthError extends Error {
  override readonly name: string = 'AuthError'
  constructor (
    readonly code: AuthErrorCode,
    message: string,
    readonly status = 0
  ) {
    super(message)
  }
}

/** The session is over (refresh token expired, revoked, missing, or the user disabled): sign in again. */
export class SessionExpiredError extends AuthError {
  override readonly name = 'SessionExpiredError'
  constructor (message = 'the session has expired; sign in again', status = 400) {
    super('session_expired', message, status)
  }
}

/**
 * A retired refresh token was presented outside the grace window: the server
 * revoked the whole session because the token may have been stolen.
 */
export class SessionReusedError extends AuthError {
  override readonly name = 'SessionReusedError'
  constructor (message = 'the refresh token was already used; the session was revoked', status = 400) {
    super('session_reused', message, status)
  }
}

/** Too many attempts; `retryAfterSeconds` comes from the Retry-After header. */
export class RateLimitedError extends AuthError {
  override readonly name = 'RateLimitedError'
  constructor (
    readonly retryAfterSeconds: number,
    message = `too many attempts; retry in ${retryAfterSeconds} s`
  ) {
    super('rate_limited', message, 429)
  }
}

/**
 * The service is shedding load (503, e.g. a login flood filled its password
 * queue); retry after `retryAfterSeconds`. The session, if any, is kept.
 */
export class ServiceUnavailableError extends AuthError {
  override readonly name = 'ServiceUnavailableError'
  constructor (
    readonly retryAfterSeconds: number,
    message = `the service is busy; retry in ${retryAfterSeconds} s`
  ) {
    super('temporarily_unavailable', message, 503)
  }
}

/**
 * Wrong email or password (or a disabled account: the server does not tell
 * them apart); in a second step, a wrong code or a refused passkey, or a
 * step that can no longer be taken (its message then says to sign in again).
 */
export class InvalidCredentialsError extends AuthError {
  override readonly name = 'InvalidCredentialsError'
  constructor (message = 'invalid email or password') {
    super('invalid_credentials', message, 400)
  }
}

/**
 * The password was right, but the service requires a verified address
 * (REQUIRE_EMAIL_VERIFICATION) and this one is not: ask the user to open the
 * link sent at sign-up, or to reset the password (which verifies it too).
 */
export class EmailNotVerifiedError extends AuthError {
  override readonly name = 'EmailNotVerifiedError'
  constructor (message = 'the email address is not verified yet') {
    super('email_not_verified', message, 400)
  }
}

/**
 * The route needs a stronger or more recent authentication than the access
 * token's (RFC 9470 `insufficient_user_authentication`): the session is
 * fine, a refresh would not help. Ask the user for a factor and call
 * `client.stepUp(...)`, then retry. `acrValues` and `maxAge` are what the
 * service asked for.
 */
export class StepUpRequiredError extends AuthError {
  override readonly name = 'StepUpRequiredError'
  constructor (
    message: string,
    readonly acrValues: string[] = [],
    readonly maxAge: number | undefined = undefined
  ) {
    super('insufficient_user_authentication', message, 401)
  }
}

/** Whether a 401 is RFC 9470's insufficient_user_authentication (read from its challenge). */
export function needsStepUp (response: Response): boolean {
  return response.status === 401 && /error="insufficient_user_authentication"/.test(response.headers.get('www-authenticate') ?? '')
}

/** A one-time code for the second step of a login: the authenticator app's code, or a recovery code. */
export type OneTimeCode = { otp: string } | { recoveryCode: string }

/**
 * What finishes the second step of a login: a one-time code, or a passkey's
 * assertion (`credential`: AuthenticationResponseJSON, what
 * navigator.credentials.get() returned over `passkeyOptions()`, as JSON).
 */
export type SecondStepProof = OneTimeCode | { credential: unknown }

/** How an MfaRequiredError finishes its sign-in (built by the client, mfa.ts). */
export interface SecondStep {
  complete(proof: SecondStepProof): Promise<AccessTokenClaims | null>
  /** PublicKeyCredentialRequestOptionsJSON for the passkey step. */
  passkeyOptions(): Promise<Record<string, unknown>>
  /** The passkey step in a browser: options, navigator.credentials.get(), then complete. */
  completeWithPasskey(signal?: AbortSignal): Promise<AccessTokenClaims | null>
}

/**
 * The password was right and the account has a second factor: the service
 * answered `insufficient_authorization` with an `auth_session` (the
 * authorization challenge endpoint, DESIGN §3.16), which this error holds.
 * Finish the sign-in (same client, same transport) with what `factors`
 * names, and the new session's claims resolve:
 * - 'otp' (and 'recovery_code' while any are left): ask for a code from the
 *   authenticator app (or a recovery code) and call `complete`;
 * - 'passkey': call `completeWithPasskey()` in a browser (the user picks
 *   one of the account's passkeys and verifies), or, with another WebAuthn
 *   layer, `passkeyOptions()` then `complete({ credential })`.
 * A wrong code or a refused passkey throws InvalidCredentialsError and
 * leaves this error usable for another try (up to five); after that, after
 * five minutes, or once the sign-in has finished (a flow ends with its
 * code), it throws InvalidCredentialsError whose message says to sign in
 * again. `code` stays `mfa_required` (the password grant's name); `status`
 * is the answer's, 403.
 */
export class MfaRequiredError extends AuthError {
  override readonly name = 'MfaRequiredError'
  private readonly step: SecondStep
  constructor (
    /** What the second step accepts: 'otp' and 'recovery_code' (with an authenticator app; the latter while any are left), 'passkey' (with a passkey). */
    readonly factors: readonly string[],
    step: SecondStep | ((proof: SecondStepProof) => Promise<AccessTokenClaims | null>),
    message = 'a second factor is required',
    status = 403
  ) {
    super('mfa_required', message, status)
    this.step = typeof step === 'function'
      ? {
          complete: step,
          passkeyOptions: () => Promise.reject(new AuthError('passkey_unavailable', 'this second step cannot use a passkey')),
          completeWithPasskey: () => Promise.reject(new AuthError('passkey_unavailable', 'this second step cannot use a passkey')),
        }
      : step
  }

  /** Finishes the login with a code, or with a passkey's assertion (`{ credential }`). */
  complete (proof: SecondStepProof): Promise<AccessTokenClaims | null> {
    return this.step.complete(proof)
  }

  /**
   * The options of the passkey step (PublicKeyCredentialRequestOptionsJSON:
   * the account's passkeys, user verification required), for a WebAuthn
   * layer of your own; then `complete({ credential })`. Each call makes a
   * new challenge. Throws InvalidCredentialsError when the step is spent or
   * the account has no passkey.
   */
  passkeyOptions (): Promise<Record<string, unknown>> {
    return this.step.passkeyOptions()
  }

  /**
   * Finishes the login with one of the account's passkeys, in a browser:
   * the browser asks the user to pick one and verify (PIN, biometric). Throws
   * InvalidCredentialsError (refused), or the browser's DOMException
   * (NotAllowedError: cancelled, or no passkey of the account here).
   */
  completeWithPasskey (options: { signal?: AbortSignal } = {}): Promise<AccessTokenClaims | null> {
    return this.step.completeWithPasskey(options.signal)
  }
}

/** The server answered with an error body; `code` is its `code` (or RFC 6749 `error`). */
export class ApiRequestError extends AuthError {
  override readonly name = 'ApiRequestError'
  constructor (code: AuthErrorCode, message: string, status: number, readonly body: unknown = undefined) {
    super(code, message, status)
  }
}

/** No answer from the server (offline, DNS, aborted). The session is kept. */
export class NetworkError extends AuthError {
  override readonly name = 'NetworkError'
  constructor (message: string, override readonly cause?: unknown) {
    super('network_error', message, 0)
  }
}

/** Reads the Retry-After header (seconds or an HTTP date) as whole seconds, at least 1. */
export function retryAfterSeconds (header: string | null, now = Date.now()): number {
  if (header === null) return 1
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds))
  const date = Date.parse(header)
  return Number.isNaN(date) ? 1 : Math.max(1, Math.ceil((date - now) / 1000))
}

/** The error an error response stands for. `refresh` marks an answer of the refresh grant. */
export async function errorFromResponse (response: Response, context: 'refresh' | 'login' | 'api'): Promise<AuthError> {
  let body: unknown
  try {
    body = await response.json()
  } catch {
    body = undefined
  }
  const b = (body ?? {}) as { error?: unknown; error_description?: unknown; code?: unknown; message?: unknown }
  const code: AuthErrorCode = isServiceErrorCode(b.code) ? b.code : isServiceErrorCode(b.error) ? b.error : `http_${response.status}`
  const message =
    typeof b.message === 'string' ? b.message : typeof b.error_description === 'string' ? b.error_description : response.statusText || code
  if (needsStepUp(response)) {
    const challenge = response.headers.get('www-authenticate') ?? ''
    const acrValues = /acr_values="([^"]*)"/.exec(challenge)?.[1]?.split(' ').filter(Boolean) ?? []
    const maxAge = /max_age=(\d+)/.exec(challenge)?.[1]
    return new StepUpRequiredError(message, acrValues, maxAge === undefined ? undefined : Number(maxAge))
  }
  if (response.status === 429) return new RateLimitedError(retryAfterSeconds(response.headers.get('retry-after')), message)
  if (response.status === 503) return new ServiceUnavailableError(retryAfterSeconds(response.headers.get('retry-after')), message)
  if (context === 'refresh' && response.status === 400 && (code === 'invalid_grant' || code === 'invalid_request')) {
    // The service says "already used" for a reused token (reuse detection revoked the session), and
    // invalid_request when no refresh token (no cookie) came with the request.
    if (code === 'invalid_grant' && /already used|reuse/i.test(message)) return new SessionReusedError(message, response.status)
    return new SessionExpiredError(message, response.status)
  }
  if (context === 'login' && response.status === 400 && code === 'invalid_grant') return new InvalidCredentialsError(message)
  // A second step's auth_session that is spent, expired or finished: as the password grant's spent mfa_token was, a refused sign-in ("sign in again").
  if (context === 'login' && response.status === 400 && code === 'invalid_session') return new InvalidCredentialsError(message)
  if (context === 'login' && response.status === 400 && code === 'email_not_verified') return new EmailNotVerifiedError(message)
  return new ApiRequestError(code, message, response.status, body)
}
