import type { AccessTokenClaims } from './client.js'
import { ApiRequestError, MfaRequiredError, errorFromResponse, type AuthError, type SecondStepProof } from './errors.js'
import { getCredential } from './passkeys.js'

/**
 * Second factors in the SDK: the second step of a sign-in (MfaRequiredError's
 * `complete` with a code or a passkey's assertion, `completeWithPasskey`)
 * and the signed-in user's TOTP enrolment, removal, recovery codes and list
 * (the service's /users/me/mfa routes).
 *
 * The second step is a request of the authorization challenge endpoint
 * (first-party.ts, DESIGN §3.16) naming the `auth_session` of its
 * `insufficient_authorization` answer: the single-use token the password
 * grant called `mfa_token`.
 */

/**
 * The password grant's second step, which the SDK no longer uses: the
 * service serves it only with PASSWORD_GRANT=enabled. Kept for code that
 * names it.
 * @deprecated sign in through AuthClient.login and MfaRequiredError.complete (the authorization challenge endpoint).
 */
export const MFA_OTP_GRANT_TYPE = 'urn:token-auth:grant-type:mfa-otp'

/** What the second step needs of the sign-in (first-party.ts). */
export interface SecondStepClient {
  /** A POST with a JSON body (cookie transport: the cookie and the CSRF header). */
  post(path: string, body: unknown): Promise<Response>
  /** Sends the step's parameters to the authorization challenge endpoint and finishes the sign-in as its first request would. */
  step(params: Record<string, unknown>): Promise<AccessTokenClaims | null>
}

/**
 * The sign-in error to throw: MfaRequiredError (able to finish the sign-in)
 * for the challenge endpoint's insufficient_authorization with its
 * auth_session, `error` otherwise.
 */
export function secondStepOr (error: AuthError, client: SecondStepClient): AuthError {
  if (!(error instanceof ApiRequestError) || error.code !== 'insufficient_authorization') return error
  const body = error.body as { auth_session?: unknown; factors?: unknown } | undefined
  if (typeof body?.auth_session !== 'string') return error
  const authSession = body.auth_session
  const factors = Array.isArray(body.factors) ? body.factors.filter((f): f is string => typeof f === 'string') : ['otp']
  const passkeyOptions = () => secondStepPasskeyOptions(client, authSession)
  const complete = (proof: SecondStepProof) => client.step({ auth_session: authSession, ...proofParams(proof) })
  return new MfaRequiredError(factors, {
    complete,
    passkeyOptions,
    completeWithPasskey: async (signal) => complete({ credential: await getCredential(await passkeyOptions(), signal) }),
  }, error.message, error.status)
}

/** The draft's parameter of each proof. */
function proofParams (proof: SecondStepProof): Record<string, unknown> {
  if ('otp' in proof) return { otp: proof.otp }
  if ('recoveryCode' in proof) return { recovery_code: proof.recoveryCode }
  return { credential: proof.credential }
}

/** POST /auth/mfa/passkey-options: the passkey step's options, for the auth_session (not spent here; the route names it mfa_token). */
async function secondStepPasskeyOptions (client: SecondStepClient, authSession: string): Promise<Record<string, unknown>> {
  const response = await client.post('/auth/mfa/passkey-options', { mfa_token: authSession })
  // invalid_grant (the step is spent or expired, or the account has no passkey) reads as a refused sign-in.
  if (!response.ok) throw await errorFromResponse(response, 'login')
  return (await response.json()) as Record<string, unknown>
}

export interface TotpEnrolment {
  /** The secret in base32, for typing into an app by hand. */
  secret: string
  /** otpauth://totp/… for authenticator apps. */
  otpauthUri: string
  /** The URI as a QR code (an image/svg+xml data URL) for an <img src>. */
  qrCode: string
}

export interface SecondFactorList {
  totp: { confirmed: boolean; createdAt: string; confirmedAt: string | null } | null
  recoveryCodes: { remaining: number }
}

/** The signed-in user's requests, as AuthClient.request makes them. */
type Request = <T>(path: string, options?: { method?: string; json?: unknown }) => Promise<T>

export async function startTotpEnrolment (request: Request): Promise<TotpEnrolment> {
  const body = await request<{ secret: string; otpauth_uri: string; qr_code: string }>('/users/me/mfa/totp', { method: 'POST' })
  return { secret: body.secret, otpauthUri: body.otpauth_uri, qrCode: body.qr_code }
}

/** Activates the authenticator with its current code; the recovery codes, to show the user this once. */
export async function confirmTotp (request: Request, code: string): Promise<string[]> {
  return (await request<{ recoveryCodes: string[] }>('/users/me/mfa/totp/confirm', { method: 'POST', json: { code } })).recoveryCodes
}

/** Removes the authenticator and its recovery codes, proven by a current code or the password. */
export async function removeTotp (request: Request, proof: { code: string } | { password: string }): Promise<void> {
  await request('/users/me/mfa/totp', { method: 'DELETE', json: proof })
}

/** A new set of recovery codes; the old set stops working. */
export async function regenerateRecoveryCodes (request: Request): Promise<string[]> {
  return (await request<{ recoveryCodes: string[] }>('/users/me/mfa/recovery-codes', { method: 'POST' })).recoveryCodes
}

export function listFactors (request: Request): Promise<SecondFactorList> {
  return request<SecondFactorList>('/users/me/mfa')
}
