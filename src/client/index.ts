/**
 * Client SDK of the token-auth service (package export `token-auth/client`).
 * Built on fetch, AbortController, WebCrypto (crypto.getRandomValues and
 * crypto.subtle, for the sign-in's PKCE) and, when present, Web Locks,
 * BroadcastChannel and WebAuthn (navigator.credentials, for passkeys), and no
 * library. Safe in browsers, React Native (with a WebCrypto polyfill for
 * sign-in) and Node 22 or later. The redirect
 * sign-in is its own entry point, `token-auth/client/redirect` (redirect.ts):
 * it uses oauth4webapi, which an app that signs in with its own form (React
 * Native's Metro bundles every import) never loads.
 */
export { AuthClient, decodeClaims } from './client.js'
export type { AccessTokenClaims, AuthClientOptions, PublicUser, RemovedCredentials, RequestOptions, SessionEndReason, Transport } from './client.js'
export {
  ApiRequestError,
  AuthError,
  EmailNotVerifiedError,
  InvalidCredentialsError,
  MfaRequiredError,
  NetworkError,
  RateLimitedError,
  ServiceUnavailableError,
  SessionExpiredError,
  SessionReusedError,
  StepUpRequiredError,
} from './errors.js'
export type { OneTimeCode, SecondStep, SecondStepProof } from './errors.js'
export { MFA_OTP_GRANT_TYPE, type SecondFactorList, type TotpEnrolment } from './mfa.js'
export type { Passkey } from './passkeys.js'
export { MemoryStore, type RefreshTokenStore } from './storage.js'
