import type { Config } from '../../config.js'
import { DomainError } from '../../errors.js'
import type { TokenRequest } from '../../schemas/tokens.js'
import { issueAccessToken } from '../access-tokens.js'
import type { Accounts, SessionRequest, VerifiedLogin } from '../accounts.js'
import { lifetimesFor, type ClientConfig, type Transport } from '../clients.js'
import type { SessionContext, SessionGrant, SessionStore } from '../sessions.js'
import type { KeyStore } from '../signing-keys.js'
import type { SecondFactors } from '../second-factors.js'
import { MFA_OTP_GRANT_TYPE, mfaOtpGrant } from './mfa-otp.js'
import type { Passkeys } from '../passkeys.js'
import { PASSKEY_GRANT_TYPE, passkeyGrant } from './passkey.js'
import { passwordGrant } from './password.js'
import { refreshTokenGrant } from './refresh-token.js'
import { STEP_UP_GRANT_TYPE, stepUpGrant } from './step-up.js'

export { grantedScope } from './scope.js'

/**
 * The token endpoint's grants (RFC 6749 §4.3, §6), one module each, keyed by
 * grant_type. A grant checks what its request proves and yields a session
 * and its live refresh token; `exchange` mints the access token from that.
 * A new grant is a module and a line in GRANTS; discovery metadata lists
 * GRANT_TYPES.
 */
export const GRANTS = {
  password: passwordGrant,
  refresh_token: refreshTokenGrant,
  [STEP_UP_GRANT_TYPE]: stepUpGrant,
  [MFA_OTP_GRANT_TYPE]: mfaOtpGrant,
  [PASSKEY_GRANT_TYPE]: passkeyGrant,
} satisfies Record<string, Grant>

export const GRANT_TYPES = Object.keys(GRANTS)

/** What a grant may use: the client it is for, the domain services, and the request's origin. */
export interface GrantContext {
  config: Config
  client: ClientConfig
  accounts: Accounts
  sessions: SessionStore
  keys: KeyStore
  now: number
  origin: SessionContext
  /** Spends one attempt of the account's password budget; throws when it is spent (the HTTP layer's limiter). */
  spendPasswordAttempt(accountEmail: string): Promise<void>
  /** The transport the token response goes out in (the second step of a login must use the first step's). */
  transport: Transport
  secondFactors: SecondFactors
  /** Spends one attempt of the user's one-time-code budget; throws when it is spent. */
  spendOneTimeCodeAttempt(userId: string): Promise<void>
  /** The passkey grant's checks (domain/passkeys.ts), and its budget of attempts per IP. */
  passkeys: Passkeys
  spendPasskeyAttempt(): Promise<void>
}

export interface GrantOutcome {
  grant: SessionGrant
  refreshToken: string
  /** The scope the access token carries: the session's, or a narrower one asked for. */
  scope: string
}

export type Grant = (params: TokenRequest, context: GrantContext) => Promise<GrantOutcome>

/** A token response's content, before a transport puts the refresh token in the body or a cookie. */
export interface IssuedTokens {
  accessToken: string
  expiresIn: number
  scope: string
  refreshToken: string
  /** When the refresh token stops working if unused: the cookie's Max-Age. */
  refreshExpiresAt: Date
}

/** Runs the grant a token request names and issues its tokens. */
export async function exchange (params: TokenRequest, context: GrantContext): Promise<IssuedTokens> {
  const grant: Grant | undefined = Object.hasOwn(GRANTS, params.grant_type) ? GRANTS[params.grant_type as keyof typeof GRANTS] : undefined
  if (!grant) throw new DomainError('unsupported_grant_type', `grant_type must be one of: ${GRANT_TYPES.join(', ')}`)
  return issueTokens(await grant(params, context), context)
}

/** The session a login for this context's client opens, with `scope` and the lifetimes for the user's role. */
export function sessionRequest (context: Pick<GrantContext, 'config' | 'client' | 'origin'>, scope: string): SessionRequest {
  return {
    clientId: context.client.id,
    scope,
    lifetimesFor: (role) => lifetimesFor(context.config, context.client, role),
    context: context.origin,
  }
}

/**
 * Opens the session of a login a grant verified, with the RFC 8176 methods it
 * proved and login_succeeded; invalid_grant when the account changed since
 * it was verified (Accounts.startSession).
 */
export async function openLoginSession (
  context: Pick<GrantContext, 'accounts' | 'config' | 'client' | 'origin'>,
  login: VerifiedLogin,
  scope: string,
  amr: string[],
  /** The passkey the login proved, if any: deleting it ends the session. */
  passkeyId?: string
): Promise<GrantOutcome> {
  const started = await context.accounts.startSession(login, sessionRequest(context, scope), { recordLogin: true, amr, passkeyId })
  if (!started) throw new DomainError('invalid_grant', 'the account changed while signing in; sign in again')
  return { grant: started.grant, refreshToken: started.refreshToken, scope }
}

/** Mints the access token of a session's grant, with the lifetime of its client and role. */
export function issueTokens (outcome: GrantOutcome, context: Pick<GrantContext, 'config' | 'client' | 'keys' | 'now'>): IssuedTokens {
  const { config } = context
  const { accessTokenTtlSeconds } = lifetimesFor(config, context.client, outcome.grant.role)
  const { accessToken, expiresIn } = issueAccessToken(context.keys, {
    issuer: config.issuer,
    audience: config.audience,
    grant: { ...outcome.grant, scope: outcome.scope },
    ttlSeconds: accessTokenTtlSeconds,
    now: context.now,
  })
  return { accessToken, expiresIn, scope: outcome.scope, refreshToken: outcome.refreshToken, refreshExpiresAt: outcome.grant.idleExpiresAt }
}
