import type { AccessTokenClaims } from './client.js'
import { ApiRequestError, MfaRequiredError, errorFromResponse, type AuthError, type SecondStepProof } from './errors.js'
import { getCredential } from './passkeys.js'

/**
 * Second factors in the SDK: the second step of a login (MfaRequiredError's
 * `complete` with a code or a passkey's assertion, `completeWithPasskey`)
 * and the signed-in user's TOTP enrolment, removal, recovery codes and list
 * (the service's /users/me/mfa routes).
 */

export const MFA_OTP_GRANT_TYPE = 'urn:token-auth:grant-type:mfa-otp'

/** What the second step needs of the client: its id, its POST to /auth (CSRF header, cookie), and how it takes tokens. */
export interface SecondStepClient {
  clientId: string
  post(path: string, body: unknown): Promise<Response>
  /** Takes a token response as a login does; resolves the new claims. */
  accept(tokens: unknown): Promise<AccessTokenClaims | null>
}

/** The login error to throw: MfaRequiredError (able to complete the login) for mfa_required, `error` otherwise. */
export function secondStepOr (error: AuthError, client: SecondStepClient): AuthError {
  if (!(error instanceof ApiRequestError) || error.code !== 'mfa_required') return error
  const body = error.body as { mfa_token?: unknown; factors?: unknown } | undefined
  if (typeof body?.mfa_token !== 'string') return error
  const mfaToken = body.mfa_token
  const factors = Array.isArray(body.factors) ? body.factors.filter((f): f is string => typeof f === 'string') : ['otp']
  const passkeyOptions = () => secondStepPasskeyOptions(client, mfaToken)
  return new MfaRequiredError(factors, {
    complete: (proof) => completeSecondStep(client, mfaToken, proof),
    passkeyOptions,
    completeWithPasskey: async (signal) => completeSecondStep(client, mfaToken, { credential: await getCredential(await passkeyOptions(), signal) }),
  }, error.message)
}

/** POST /auth/mfa/passkey-options: the passkey step's options (the mfa_token is not spent). */
async function secondStepPasskeyOptions (client: SecondStepClient, mfaToken: string): Promise<Record<string, unknown>> {
  const response = await client.post('/auth/mfa/passkey-options', { mfa_token: mfaToken })
  // invalid_grant (the step is spent or expired, or the account has no passkey) reads as a refused login.
  if (!response.ok) throw await errorFromResponse(response, 'login')
  return (await response.json()) as Record<string, unknown>
}

async function completeSecondStep (client: SecondStepClient, mfaToken: string, proof: SecondStepProof): Promise<AccessTokenClaims | null> {
  const response = await client.post('/auth/token', {
    grant_type: MFA_OTP_GRANT_TYPE,
    mfa_token: mfaToken,
    client_id: client.clientId,
    ...('otp' in proof ? { otp: proof.otp } : 'recoveryCode' in proof ? { recovery_code: proof.recoveryCode } : { credential: proof.credential }),
  })
  if (!response.ok) throw await errorFromResponse(response, 'login')
  return client.accept(await response.json())
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
