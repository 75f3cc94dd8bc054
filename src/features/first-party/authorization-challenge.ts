import { DomainError } from '../../errors.js'
import { AMR, combineMethods } from '../../shared/authentication-methods.js'
import { OPENID_SCOPES } from '../clients/clients.js'
import { parseCredential } from '../passkeys/passkey-grant.js'
import { oneTimeCodeOf } from '../second-factors/second-factors.js'
import type { VerifiedLogin } from '../accounts/accounts.js'
import type { GrantContext } from '../tokens/grants/grant.js'
import { grantedScope } from '../tokens/grants/scope.js'

/** RFC 7636 §4.2: an S256 challenge is the base64url of 32 bytes. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

/** One request to the authorization challenge endpoint, its parameters as the draft names them (DESIGN §3.16). */
export interface ChallengeRequest {
  response_type?: string | undefined
  scope?: string | undefined
  code_challenge?: string | undefined
  code_challenge_method?: string | undefined
  username?: string | undefined
  password?: string | undefined
  auth_session?: string | undefined
  otp?: string | undefined
  recovery_code?: string | undefined
  /** A WebAuthn assertion: a passkey sign-in (first step) or the passkey second step (with auth_session). */
  credential?: unknown
}

/**
 * The authorization challenge endpoint's steps (draft-ietf-oauth-first-party-apps-04
 * §5): a first-party client's own sign-in form, ending in an authorization
 * code exchanged with PKCE at the token endpoint. Each step runs the very
 * checks of the token endpoint's login grants, on the same context: the
 * password budget and bcrypt's equal time, the verified-address and
 * disabled checks, the second step's single-use token (the `auth_session`,
 * bound to client, transport and PKCE challenge), the passkey's challenge.
 * What differs is the end: a code, not a session; the session starts at the
 * exchange, if the account is still as it was checked.
 */
export async function authorizationChallenge (request: ChallengeRequest, context: GrantContext): Promise<string> {
  if (request.response_type !== undefined && request.response_type !== 'code') {
    throw new DomainError('invalid_request', 'response_type must be code')
  }
  if (request.code_challenge_method !== undefined && request.code_challenge_method !== 'S256') {
    throw new DomainError('invalid_request', 'code_challenge_method must be S256; plain is not accepted')
  }
  if (request.code_challenge !== undefined && !S256_CHALLENGE.test(request.code_challenge)) {
    throw new DomainError('invalid_request', 'code_challenge must be the base64url SHA-256 of the verifier (43 characters)')
  }
  if (request.auth_session !== undefined) return secondStep(request, request.auth_session, context)
  // draft §5.1: a first request names its response type (code) and its PKCE challenge.
  if (request.response_type === undefined) throw new DomainError('invalid_request', 'response_type=code is required on the first request')
  const codeChallenge = request.code_challenge
  if (codeChallenge === undefined || request.code_challenge_method === undefined) {
    throw new DomainError('invalid_request', 'code_challenge and code_challenge_method=S256 are required (PKCE)')
  }
  const scope = grantedScope(request.scope, [...OPENID_SCOPES, ...context.client.scopes])
  if (request.credential !== undefined) {
    if (request.username !== undefined || request.password !== undefined) throw new DomainError('invalid_request', 'send a password or a passkey, not both')
    const credential = parseCredential(request.credential)
    await context.spendPasskeyAttempt()
    const { login, amr, passkeyId } = await context.passkeys.signIn(credential, context.origin.ip)
    return issueCode(context, login, { scope, codeChallenge, amr, passkeyId })
  }
  if (!request.username || request.password === undefined) {
    throw new DomainError('invalid_request', 'send username and password, a passkey assertion (credential), or auth_session with the next step')
  }
  await context.spendPasswordAttempt(request.username)
  const login = await context.accounts.checkPasswordLogin(request.username, request.password, context.origin.ip)
  if (!login) throw new DomainError('invalid_grant', 'invalid username or password')
  try {
    await context.secondFactors.requireSecondStep(login, { clientId: context.client.id, transport: context.transport, scope, ip: context.origin.ip, codeChallenge })
  } catch (error) {
    // The password grant's mfa_required, in the draft's words: the same single-use token is the auth_session.
    if (error instanceof DomainError && error.code === 'mfa_required' && error.fields) {
      throw new DomainError('insufficient_authorization', 'this account has a second factor: send auth_session with otp, recovery_code or credential (a passkey assertion)', undefined, {
        auth_session: String(error.fields.mfa_token),
        factors: error.fields.factors ?? [],
      })
    }
    throw error
  }
  return issueCode(context, login, { scope, codeChallenge, amr: [AMR.password] })
}

/** The second step of a flow: its auth_session and a TOTP code, a recovery code or a passkey assertion. */
async function secondStep (request: ChallengeRequest, authSession: string, context: GrantContext): Promise<string> {
  const by = { clientId: context.client.id, transport: context.transport }
  let pending: { userId: string; codeChallenge: string | null }
  try {
    pending = await context.secondFactors.pendingLogin(authSession, by)
  } catch (error) {
    if (error instanceof DomainError && error.code === 'invalid_grant') throw new DomainError('invalid_session', `the auth_session cannot be used: ${error.message.replace('mfa_token', 'auth_session')}`)
    throw error
  }
  // A pending step of the password grant (mfa-otp) is no flow of this endpoint: it has no PKCE challenge to bind a code to.
  if (pending.codeChallenge === null) throw new DomainError('invalid_session', 'this auth_session belongs to no authorization challenge')
  if (request.code_challenge !== undefined && request.code_challenge !== pending.codeChallenge) {
    throw new DomainError('invalid_request', 'code_challenge differs from the first request\'s')
  }
  const step = { ...by, ip: context.origin.ip, spendAttempt: context.spendOneTimeCodeAttempt }
  if (request.credential !== undefined) {
    if (request.otp !== undefined || request.recovery_code !== undefined) throw new DomainError('invalid_request', 'send exactly one of otp, recovery_code and credential')
    const credential = parseCredential(request.credential)
    const { login, scope, assertion } = await context.secondFactors.completeLoginWithPasskey(
      authSession,
      (userId) => context.passkeys.verifySecondFactor(userId, credential, step.ip),
      step
    )
    return issueCode(context, login, { scope, codeChallenge: pending.codeChallenge, amr: combineMethods([AMR.password], assertion.amr), passkeyId: assertion.passkeyId })
  }
  const { login, scope } = await context.secondFactors.completeLogin(authSession, oneTimeCodeOf(request), { ...step, purpose: 'login' })
  return issueCode(context, login, { scope, codeChallenge: pending.codeChallenge, amr: combineMethods([], [AMR.password, AMR.otp]) })
}

/** The code of a finished sign-in: bound to the client and the PKCE challenge, no redirect URI, remembering the account as it was checked. */
function issueCode (context: GrantContext, login: VerifiedLogin, grant: { scope: string; codeChallenge: string; amr: string[]; passkeyId?: string }): Promise<string> {
  return context.authorizationCodes.issue({
    clientId: context.client.id,
    userId: login.user.id,
    redirectUri: '',
    codeChallenge: grant.codeChallenge,
    scope: grant.scope,
    nonce: null,
    browserSessionId: null,
    amr: grant.amr,
    authTime: new Date(context.now),
    passkeyId: grant.passkeyId ?? null,
    verifiedPasswordHash: login.verified.passwordHash,
  })
}
