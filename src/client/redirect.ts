import * as oauth from 'oauth4webapi'
import { isServiceErrorCode } from '../errors.js'
import { ApiRequestError, AuthError, NetworkError, RateLimitedError, retryAfterSeconds, ServiceUnavailableError, type AuthErrorCode } from './errors.js'

/**
 * Redirect sign-in (DESIGN §3.15): the authorization-code flow with PKCE
 * (S256), state and nonce, for a browser app registered as a public client.
 * `beginRedirectSignIn` sends the user to the service's sign-in pages;
 * `completeRedirectSignIn`, on the page the service sends them back to,
 * checks the answer (state, RFC 9207 iss), exchanges the code and checks the
 * ID token (issuer, audience, expiry, nonce). The protocol is oauth4webapi's,
 * a certified OpenID relying party, rather than a second implementation
 * here; discovery reads the issuer's /.well-known/openid-configuration.
 *
 * Between the two halves the sign-in's secrets (code verifier, state,
 * nonce) wait in `storage`: sessionStorage by default, so they stay in the
 * tab that started the sign-in and go with it.
 */

/** Where a started sign-in waits for its callback (Web Storage's three methods). */
export type RedirectStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>

export interface RedirectSignInOptions {
  /** The service's issuer URL (its ISSUER). */
  issuer: string
  /** The client's client_id (a public client: token_endpoint_auth_method none). */
  clientId: string
  /** One of the client's registered redirect URIs, exactly: the page that calls completeRedirectSignIn. */
  redirectUri: string
  /** Default: sessionStorage. */
  storage?: RedirectStorage
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch
}

export interface BeginRedirectSignInOptions extends RedirectSignInOptions {
  /** Space-separated scopes; default `openid`. Add `offline_access` for a refresh token, `email` for the address. */
  scope?: string
  /** `none` (no page: fails with login_required without a session), `login` (sign in again), `consent` (ask again). */
  prompt?: 'none' | 'login' | 'consent'
  /** The address to fill in on the sign-in page. */
  loginHint?: string
  /** Go to the sign-in page at once (location.assign). Default: true in a browser, false elsewhere. */
  navigate?: boolean
}

export interface CompleteRedirectSignInOptions extends RedirectSignInOptions {
  /** The URL the service sent the user back to, with its query. Default: location.href. */
  url?: string | URL
}

/** The ID token's claims (OIDC Core §2), checked. */
export interface IdTokenClaims {
  iss: string
  sub: string
  aud: string | string[]
  exp: number
  iat: number
  auth_time?: number
  nonce?: string
  /** RFC 8176 methods: pwd, otp, hwk, swk, mfa... */
  amr?: string[]
  acr?: string
  /** The service's browser session. */
  sid?: string
  /** With the `email` scope. */
  email?: string
  email_verified?: boolean
  [claim: string]: unknown
}

export interface RedirectSignInResult {
  accessToken: string
  /** With `offline_access` granted, or for a first-party client. */
  refreshToken?: string
  idToken: string
  claims: IdTokenClaims
  /** Seconds the access token lives. */
  expiresIn?: number
  /** The scopes granted (may be fewer than asked for). */
  scope?: string
}

/**
 * The service sent the user back with an error (RFC 6749 §4.1.2.1):
 * `error` as it came (access_denied when the user chose Deny,
 * login_required for prompt=none without a session...). `code` is that
 * error when it is one the service's catalogue names, else invalid_response.
 */
export class AuthorizationResponseError extends AuthError {
  override readonly name = 'AuthorizationResponseError'
  constructor (
    readonly error: string,
    message: string
  ) {
    super(isServiceErrorCode(error) ? error : 'invalid_response', message, 400)
  }
}

/** What is kept between the two halves. */
interface PendingSignIn {
  redirectUri: string
  state: string
  nonce: string
  codeVerifier: string
}

const storageKey = (issuer: string, clientId: string) => `token-auth:redirect-sign-in:${issuer}:${clientId}`

/**
 * Starts a sign-in: makes the code verifier (its S256 challenge goes in the
 * URL), state and nonce, keeps them in `storage`, and resolves the
 * authorization URL, after sending the browser there unless `navigate` is
 * false. A second call replaces the first's pending sign-in.
 */
export async function beginRedirectSignIn (options: BeginRedirectSignInOptions): Promise<URL> {
  const storage = storageOf(options)
  try {
    const as = await discover(options)
    if (!as.authorization_endpoint) throw new AuthError('invalid_response', `${options.issuer} names no authorization_endpoint`)
    const pending: PendingSignIn = {
      redirectUri: options.redirectUri,
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier: oauth.generateRandomCodeVerifier(),
    }
    const url = new URL(as.authorization_endpoint)
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: options.clientId,
      redirect_uri: options.redirectUri,
      scope: options.scope ?? 'openid',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      ...(options.prompt ? { prompt: options.prompt } : {}),
      ...(options.loginHint ? { login_hint: options.loginHint } : {}),
    }
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
    storage.setItem(storageKey(options.issuer, options.clientId), JSON.stringify(pending))
    const location = (globalThis as { location?: { assign(url: string): void } }).location
    if (options.navigate ?? typeof location?.assign === 'function') location!.assign(url.href)
    return url
  } catch (error) {
    throw asAuthError(error)
  }
}

/**
 * Finishes the sign-in on the redirect URI's page: checks the answer
 * against the pending sign-in (state, iss), exchanges the code with the code
 * verifier, and checks the ID token (iss, aud, exp, nonce). The pending
 * sign-in is spent first, so a callback URL works once. Throws
 * AuthorizationResponseError for an error the service sent back,
 * ApiRequestError for a refused exchange (invalid_grant: the code was used
 * or expired), AuthError invalid_response for an answer that does not
 * match, NetworkError without an answer.
 */
export async function completeRedirectSignIn (options: CompleteRedirectSignInOptions): Promise<RedirectSignInResult> {
  const storage = storageOf(options)
  const href = options.url ?? (globalThis as { location?: { href: string } }).location?.href
  if (href === undefined) throw new TypeError('completeRedirectSignIn: pass the callback URL (url) outside a browser')
  const key = storageKey(options.issuer, options.clientId)
  const pending = readPending(storage.getItem(key))
  storage.removeItem(key)
  if (!pending) throw new AuthError('invalid_response', 'no sign-in was started in this tab (or it was already completed): begin it again')
  if (pending.redirectUri !== options.redirectUri) throw new AuthError('invalid_response', `the sign-in was started for ${pending.redirectUri}`)
  try {
    const as = await discover(options)
    const client: oauth.Client = { client_id: options.clientId }
    const callback = oauth.validateAuthResponse(as, client, new URL(href), pending.state)
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, options.redirectUri, pending.codeVerifier, httpOptions(options))
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pending.nonce, requireIdToken: true })
    const claims = oauth.getValidatedIdTokenClaims(tokens)
    if (!claims || !tokens.id_token) throw new AuthError('invalid_response', 'the token endpoint answered no ID token')
    return {
      accessToken: tokens.access_token,
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      idToken: tokens.id_token,
      claims: claims as unknown as IdTokenClaims,
      ...(tokens.expires_in !== undefined ? { expiresIn: tokens.expires_in } : {}),
      ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
    }
  } catch (error) {
    throw asAuthError(error)
  }
}

function storageOf (options: RedirectSignInOptions): RedirectStorage {
  if (options.storage) return options.storage
  try {
    const storage = (globalThis as { sessionStorage?: RedirectStorage }).sessionStorage
    if (storage) return storage
  } catch {
    // Blocked storage (a privacy setting) throws on access: the message below says what to do.
  }
  throw new TypeError('redirect sign-in: no sessionStorage here; pass `storage`')
}

function readPending (raw: string | null): PendingSignIn | null {
  if (raw === null) return null
  try {
    const value = JSON.parse(raw) as Partial<PendingSignIn>
    const fields = [value.redirectUri, value.state, value.nonce, value.codeVerifier]
    return fields.every((field) => typeof field === 'string') ? (value as PendingSignIn) : null
  } catch {
    return null
  }
}

/** Plain http only to a loopback issuer (development, tests); oauth4webapi refuses it elsewhere. */
function isLoopbackHttp (issuer: URL): boolean {
  return issuer.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(issuer.hostname)
}

function httpOptions (options: RedirectSignInOptions): oauth.HttpRequestOptions<'GET' | 'POST', URLSearchParams> {
  const fetchImpl = options.fetch
  return {
    ...(fetchImpl ? { [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<'GET' | 'POST', URLSearchParams>) => fetchImpl(url, init) } : {}),
    ...(isLoopbackHttp(new URL(options.issuer)) ? { [oauth.allowInsecureRequests]: true } : {}),
  }
}

async function discover (options: RedirectSignInOptions): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(options.issuer)
  const response = await oauth.discoveryRequest(issuer, httpOptions(options) as oauth.DiscoveryRequestOptions)
  return oauth.processDiscoveryResponse(issuer, response)
}

/** oauth4webapi's errors as the SDK's: every error the SDK throws is an AuthError. */
function asAuthError (error: unknown): unknown {
  if (error instanceof AuthError) return error
  if (error instanceof oauth.AuthorizationResponseError) {
    return new AuthorizationResponseError(error.error, error.error_description ?? error.error)
  }
  if (error instanceof oauth.ResponseBodyError) {
    const retryAfter = retryAfterSeconds(error.response.headers.get('retry-after'))
    if (error.status === 429) return new RateLimitedError(retryAfter, error.error_description)
    if (error.status === 503) return new ServiceUnavailableError(retryAfter, error.error_description)
    const code: AuthErrorCode = isServiceErrorCode(error.error) ? error.error : `http_${error.status}`
    return new ApiRequestError(code, error.error_description ?? error.error, error.status, error.cause)
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const reported = error.cause[0]?.parameters.error
    const code: AuthErrorCode = isServiceErrorCode(reported) ? reported : `http_${error.status}`
    return new ApiRequestError(code, error.cause[0]?.parameters.error_description ?? error.message, error.status)
  }
  if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError) {
    // The answer is not what a sign-in expects (state, iss, nonce, a malformed token): nothing to retry.
    return new AuthError('invalid_response', error.message)
  }
  // fetch rejects with a TypeError (or an AbortError) when no answer arrives; oauth4webapi's own TypeErrors carry a code.
  if ((error instanceof TypeError && !(error as { code?: unknown }).code) || (error instanceof Error && error.name === 'AbortError')) {
    return new NetworkError(error.message, error)
  }
  return error
}
