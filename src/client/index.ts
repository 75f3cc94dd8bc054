/**
 * Client SDK of the token-auth service (package export `token-auth/client`).
 * Built on fetch, AbortController and, when present, Web Locks,
 * BroadcastChannel and WebAuthn (navigator.credentials, for passkeys); the
 * redirect sign-in (redirect.ts) alone uses a library, oauth4webapi, and a
 * bundler leaves it out of apps that do not call it. Safe in browsers, React Native and Node 22 or later.
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
export { AuthorizationResponseError, beginRedirectSignIn, completeRedirectSignIn } from './redirect.js'
export type { BeginRedirectSignInOptions, CompleteRedirectSignInOptions, IdTokenClaims, RedirectSignInOptions, RedirectSignInResult, RedirectStorage } from './redirect.js'
