import type { TObject, TProperties, Static } from 'typebox'
import type { Config } from '../../../config.js'
import { DomainError } from '../../../errors.js'
import { issueAccessToken, issueClientAccessToken } from '../access-tokens.js'
import type { Accounts, SessionRequest, VerifiedLogin } from '../../accounts/accounts.js'
import type { AuthorizationCodes } from '../../oauth/authorization-codes.js'
import { lifetimesFor, type Transport } from '../clients.js'
import type { Client, ClientRegistry } from '../../clients/clients.js'
import type { Passkeys } from '../../passkeys/passkeys.js'
import type { SecondFactors } from '../../second-factors/second-factors.js'
import type { SessionContext, SessionGrant, SessionStore } from '../../sessions/sessions.js'
import type { KeyStore } from '../../signing-keys/signing-keys.js'
import type { CommonParams } from './params.js'

/**
 * What every grant of the token endpoint is made of (RFC 6749 §4.5: one
 * grant_type each), and the helpers grants share. Grants import this
 * module, never the registry (index.ts), which imports them: no cycle.
 */

/** What a grant may use: the client it is for, the domain services, and the request's origin. */
export interface GrantContext {
  config: Config
  client: Client
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
  /** The passkey grant's checks (features/passkeys/passkeys.ts), and its budget of attempts per IP. */
  passkeys: Passkeys
  spendPasskeyAttempt(): Promise<void>
  /** The authorization codes of the hosted sign-in (features/oauth). */
  authorizationCodes: AuthorizationCodes
  clients: ClientRegistry
}

/** What a grant yields when it starts or continues a user's session. */
export interface SessionOutcome {
  grant: SessionGrant
  refreshToken: string
  /** The scope the access token carries: the session's, or a narrower one asked for. */
  scope: string
  /** The refresh token stays with the server: a third-party client without offline_access gets none (DESIGN §3.15). */
  withholdRefreshToken?: boolean
  /** The ID token of an OpenID sign-in, made once the access token is known (its at_hash). */
  idToken?: (accessToken: string) => string
}

/** What client_credentials yields (RFC 6749 §4.4): a token for the client itself, no session, no refresh token. */
export interface ClientOutcome {
  clientToken: true
  scope: string
}

export type GrantOutcome = SessionOutcome | ClientOutcome

/** A token response's content, before a transport puts the refresh token in the body or a cookie. */
export interface IssuedTokens {
  accessToken: string
  expiresIn: number
  scope: string
  /** Null when the response carries none (client_credentials, a withheld refresh token). */
  refreshToken: string | null
  /** When the refresh token stops working if unused: the cookie's Max-Age. */
  refreshExpiresAt: Date | null
  idToken?: string
}

/**
 * A grant: its grant_type, the request parameters it reads (TypeBox
 * properties, all optional on the wire: the handler says which are
 * missing, as RFC 6749 §5.2 invalid_request), and its handler.
 * `namesSession`: its refresh_token names a live session and, in cookie
 * transport, comes from the refresh cookie.
 */
export interface GrantDefinition<P extends TProperties = TProperties> {
  type: string
  params: P
  namesSession?: boolean
  /** One of the legacy password grant's family (the password grant, and the grants that finish its login): served only with PASSWORD_GRANT=enabled. */
  passwordGrantFamily?: boolean
  handle: (params: GrantParams<P>, context: GrantContext) => Promise<GrantOutcome>
}

/** The parameters a grant's handler sees: its own and the common ones, each possibly absent. */
export type GrantParams<P extends TProperties> = Partial<Static<TObject<P>>> & CommonParams

/** Declares a grant; the type of its handler's parameters follows from `params`. */
export function defineGrant<P extends TProperties> (definition: GrantDefinition<P>): GrantDefinition<P> {
  return definition
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
): Promise<SessionOutcome> {
  const started = await context.accounts.startSession(login, sessionRequest(context, scope), { recordLogin: true, amr, passkeyId })
  if (!started) throw new DomainError('invalid_grant', 'the account changed while signing in; sign in again')
  return { grant: started.grant, refreshToken: started.refreshToken, scope }
}

/** Mints the access token of a session's grant (or a client's own), with the lifetime of its client and role. */
export function issueTokens (outcome: GrantOutcome, context: Pick<GrantContext, 'config' | 'client' | 'keys' | 'now'>): IssuedTokens {
  const { config } = context
  if ('clientToken' in outcome) {
    const ttlSeconds = context.client.accessTokenTtlSeconds
    const accessToken = issueClientAccessToken(context.keys, { issuer: config.issuer, audience: config.audience, clientId: context.client.id, scope: outcome.scope, ttlSeconds, now: context.now })
    return { accessToken, expiresIn: ttlSeconds, scope: outcome.scope, refreshToken: null, refreshExpiresAt: null }
  }
  const { accessTokenTtlSeconds } = lifetimesFor(config, context.client, outcome.grant.role)
  const { accessToken, expiresIn } = issueAccessToken(context.keys, {
    issuer: config.issuer,
    audience: config.audience,
    grant: { ...outcome.grant, scope: outcome.scope },
    ttlSeconds: accessTokenTtlSeconds,
    now: context.now,
  })
  const withheld = outcome.withholdRefreshToken === true
  return {
    accessToken,
    expiresIn,
    scope: outcome.scope,
    refreshToken: withheld ? null : outcome.refreshToken,
    refreshExpiresAt: withheld ? null : outcome.grant.idleExpiresAt,
    ...(outcome.idToken ? { idToken: outcome.idToken(accessToken) } : {}),
  }
}
