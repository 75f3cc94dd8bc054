import type { AccessTokenClaims } from './client.js'
import { AuthError, errorFromResponse } from './errors.js'
import { secondStepOr } from './mfa.js'
import { toBase64url } from './passkeys.js'

/**
 * First-party sign-in in the SDK (DESIGN §3.16,
 * draft-ietf-oauth-first-party-apps-04): the app's own sign-in form goes to
 * the service's authorization challenge endpoint, which answers an
 * authorization code, or `insufficient_authorization` with an `auth_session`
 * when a second factor is needed (MfaRequiredError, mfa.ts); the code is
 * then exchanged at the token endpoint with the PKCE verifier (RFC 7636,
 * S256). No password grant: the service serves that only with
 * PASSWORD_GRANT=enabled.
 *
 * PKCE uses WebCrypto (crypto.getRandomValues, crypto.subtle.digest):
 * browsers in a secure context (https, or http://localhost) and Node 22
 * have it; React Native needs a WebCrypto polyfill for sign-in.
 */

export const AUTHORIZATION_CHALLENGE_PATH = '/oauth/authorize-challenge'

/** What the sign-in needs of its AuthClient (structural, so this file does not import client.ts). */
export interface FirstPartyClient {
  clientId: string
  /** A POST with a JSON body (in cookie transport with the cookie and the CSRF header). */
  post(path: string, body: unknown): Promise<Response>
  /** Takes a token response as a sign-in does; resolves the new claims. */
  accept(tokens: unknown): Promise<AccessTokenClaims | null>
}

/** The first request's proof: a password, or a passkey's assertion (AuthenticationResponseJSON). */
export type FirstStep = { username: string; password: string } | { credential: unknown }

/** A PKCE pair (RFC 7636 §4.1, §4.2): the verifier the exchange sends, and its S256 challenge. */
export interface Pkce {
  verifier: string
  challenge: string
}

/** The WebCrypto calls PKCE needs. */
interface WebCrypto {
  getRandomValues<T extends Uint8Array>(array: T): T
  subtle?: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> }
}

/**
 * A fresh PKCE pair: 32 random bytes as the verifier (43 base64url
 * characters), and the base64url SHA-256 of it as the challenge. Throws
 * AuthError `webcrypto_unavailable` where WebCrypto is missing.
 */
export async function createPkce (): Promise<Pkce> {
  const webCrypto = (globalThis as { crypto?: WebCrypto }).crypto
  if (typeof webCrypto?.getRandomValues !== 'function' || typeof webCrypto.subtle?.digest !== 'function') {
    throw new AuthError(
      'webcrypto_unavailable',
      'signing in needs WebCrypto (crypto.getRandomValues and crypto.subtle.digest): a browser page in a secure context (https or localhost), Node 22 or later, or a WebCrypto polyfill in React Native'
    )
  }
  const verifier = toBase64url(webCrypto.getRandomValues(new Uint8Array(32)))
  const digest = await webCrypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))
  return { verifier, challenge: toBase64url(new Uint8Array(digest)) }
}

/**
 * Signs in with a password or a passkey through the authorization challenge
 * endpoint, then exchanges the code. Throws MfaRequiredError when a second
 * step is needed, else the typed errors of a login (InvalidCredentialsError,
 * EmailNotVerifiedError, RateLimitedError, ServiceUnavailableError,
 * ApiRequestError, NetworkError).
 */
export async function signIn (client: FirstPartyClient, first: FirstStep, scope?: string): Promise<AccessTokenClaims | null> {
  const pkce = await createPkce()
  const response = await client.post(AUTHORIZATION_CHALLENGE_PATH, {
    client_id: client.clientId,
    response_type: 'code',
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
    ...(scope ? { scope } : {}),
    ...first,
  })
  return finish(client, pkce, response)
}

/**
 * An answer of the challenge endpoint: its code exchanged, or the error to
 * throw; `insufficient_authorization` becomes MfaRequiredError, whose next
 * request names the auth_session and ends here again, with the same PKCE pair.
 */
async function finish (client: FirstPartyClient, pkce: Pkce, response: Response): Promise<AccessTokenClaims | null> {
  if (!response.ok) {
    throw secondStepOr(await errorFromResponse(response, 'login'), {
      post: (path, body) => client.post(path, body),
      step: async (params) => finish(client, pkce, await client.post(AUTHORIZATION_CHALLENGE_PATH, { client_id: client.clientId, ...params })),
    })
  }
  const body = (await response.json()) as { authorization_code?: unknown }
  if (typeof body.authorization_code !== 'string') {
    throw new AuthError('invalid_response', 'the authorization challenge endpoint answered no authorization_code', response.status)
  }
  return exchange(client, body.authorization_code, pkce.verifier)
}

/** The code at the token endpoint (RFC 6749 §4.1.3 with the PKCE verifier; no redirect_uri: the code had none). */
async function exchange (client: FirstPartyClient, code: string, verifier: string): Promise<AccessTokenClaims | null> {
  const response = await client.post('/auth/token', { grant_type: 'authorization_code', client_id: client.clientId, code, code_verifier: verifier })
  // invalid_grant here: the account changed (password, role, disabled) between the check and the exchange; sign in again.
  if (!response.ok) throw await errorFromResponse(response, 'login')
  return client.accept(await response.json())
}
