import { createCoordinator, type TabCoordinator, type TabMessage } from './coordination.js'
import {
  AuthError,
  errorFromResponse,
  needsStepUp,
  NetworkError,
  SessionExpiredError,
  SessionReusedError,
  StepUpRequiredError,
} from './errors.js'
import { signIn, type FirstPartyClient } from './first-party.js'
import * as mfa from './mfa.js'
import { deletePasskey, listPasskeys, passkeyAssertion, registerPasskey, renamePasskey, stepUpAssertion, type Passkey, type PasskeyTransport } from './passkeys.js'
import { MemoryStore, type RefreshTokenStore } from './storage.js'

/** The service's step-up grant (its own namespace, RFC 6749 §4.5). */
const STEP_UP_GRANT = 'urn:token-auth:grant-type:step-up'

export type Transport = 'cookie' | 'body'

/** How long a tab that waited for another tab's refresh waits for its broadcast token. */
const TAB_TOKEN_WAIT_MS = 2000

export interface AuthClientOptions {
  /** The service's base URL (its ISSUER). In a browser on the same origin it may be '' (the default). */
  baseUrl?: string
  /** The public client: `admin` or `web` (cookie transport), `mobile` (body transport). */
  clientId: string
  /**
   * cookie: the refresh token stays in the service's HttpOnly cookie and the
   * access token only in this object's memory (browsers). body: both come in
   * the response body and the refresh token goes to `store` (mobile, Node).
   */
  transport: Transport
  /** Body transport: where the refresh token is kept. Default: memory only. */
  store?: RefreshTokenStore
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch
  /** Refresh this long before the access token expires (default 30 s, at most a quarter of its lifetime). */
  refreshLeewaySeconds?: number
  /** Coordinate refreshes and sign-outs with other tabs (default: true for cookie transport). */
  crossTab?: boolean
  /** Name of the Web Lock and BroadcastChannel (default derived from baseUrl and clientId). */
  channelName?: string
  /**
   * Asked when `request` meets a StepUpRequiredError: prompt the user for a
   * factor, call `client.stepUp(...)`, and resolve true to have the request
   * retried once (false: the error is thrown). Default: thrown at once.
   */
  onStepUpRequired?: (required: StepUpRequiredError) => Promise<boolean>
  /** Clock, for tests. */
  now?: () => number
  /** Value of the X-Requested-With header that cookie requests carry (CSRF defence). */
  requestedWith?: string
}

/** Why a session ended, as told to `onSessionEnd` listeners. */
export type SessionEndReason =
  /** The refresh token expired, was revoked, or the user was disabled. */
  | 'expired'
  /** A retired refresh token was presented: the server revoked the session. */
  | 'reused'
  /** This client signed out. */
  | 'signed_out'
  /** Another tab of this browser signed out. */
  | 'signed_out_elsewhere'

export interface AccessTokenClaims {
  sub: string
  sid: string
  role?: string
  scope?: string
  client_id?: string
  /** RFC 8176 methods of the session's authentication (pwd, otp, hwk, swk, user, mfa). */
  amr?: string[]
  /** When the user last authenticated, in seconds since the epoch. */
  auth_time?: number
  /** The authentication level met, when one is (the service's mfa level). */
  acr?: string
  exp: number
  iat: number
  [claim: string]: unknown
}

export interface PublicUser {
  id: string
  email: string
  role: 'user' | 'admin'
  disabled: boolean
  /** When the address was verified (ISO 8601), or null. */
  emailVerifiedAt: string | null
  createdAt: string
}

/** What a credential-removal link removed (`removeListedCredentials`). */
export interface RemovedCredentials {
  /** Passkeys deleted (the sessions they signed in to are ended). */
  passkeys: number
  /** API keys revoked. */
  apiKeys: number
}

interface TokenResponseBody {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token?: string
  scope?: string
}

interface HeldToken {
  accessToken: string
  /** Epoch ms, by this client's clock (from expires_in, so server clock skew does not matter). */
  expiresAt: number
  /** How long before expiresAt a refresh starts. */
  leewayMs: number
}

export interface RequestOptions extends Omit<RequestInit, 'body'> {
  /** Sent as a JSON body with Content-Type application/json. */
  json?: unknown
  body?: RequestInit['body']
}

/**
 * A client of the token-auth service for browsers, mobile apps and Node.
 *
 * - `login`, `signInWithPasskey`, `signUp`, `logout`, `restore` (sign back
 *   in from the refresh cookie or the stored refresh token). Sign-in goes
 *   through the authorization challenge endpoint and a PKCE code exchange
 *   (first-party.ts), which needs WebCrypto (React Native: a polyfill).
 * - `fetch`: adds the access token, refreshes it shortly before it expires,
 *   and on a 401 refreshes once and retries once.
 * - Refresh is single-flight: concurrent callers share one refresh request;
 *   across tabs a Web Lock lets one tab refresh while the others wait and
 *   take its token from a BroadcastChannel.
 */
export class AuthClient {
  readonly transport: Transport
  readonly clientId: string
  private readonly baseUrl: string
  private readonly store: RefreshTokenStore
  private readonly fetchImpl: typeof fetch
  private readonly leewayMs: number
  private readonly now: () => number
  private readonly requestedWith: string
  private readonly onStepUpRequired: ((required: StepUpRequiredError) => Promise<boolean>) | undefined
  private readonly coordinator: TabCoordinator
  private token: HeldToken | undefined
  private inflight: Promise<string> | undefined
  private readonly endListeners = new Set<(reason: SessionEndReason, error?: AuthError) => void>()
  private readonly changeListeners = new Set<() => void>()

  constructor (options: AuthClientOptions) {
    this.transport = options.transport
    this.clientId = options.clientId
    this.baseUrl = (options.baseUrl ?? '').replace(/\/$/, '')
    this.store = options.store ?? new MemoryStore()
    const globalFetch = (globalThis as { fetch?: typeof fetch }).fetch
    const chosen = options.fetch ?? globalFetch
    if (!chosen) throw new TypeError('no fetch implementation: pass options.fetch')
    // A bare window.fetch must be called with globalThis as `this`.
    this.fetchImpl = options.fetch ?? ((input, init) => globalFetch!(input, init))
    this.leewayMs = Math.max(0, (options.refreshLeewaySeconds ?? 30) * 1000)
    this.now = options.now ?? Date.now
    this.requestedWith = options.requestedWith ?? 'token-auth-client'
    this.onStepUpRequired = options.onStepUpRequired
    const crossTab = options.crossTab ?? options.transport === 'cookie'
    const channel = options.channelName ?? `token-auth:${this.baseUrl || 'same-origin'}:${this.clientId}`
    this.coordinator = createCoordinator(channel, (message) => this.onTabMessage(message), crossTab)
  }

  /** Whether an access token is held now (it may need a refresh before use). */
  get isSignedIn (): boolean {
    return this.token !== undefined
  }

  /** The held access token's claims, decoded without verification (for display: role, sub, sid, exp). */
  get claims (): AccessTokenClaims | null {
    return this.token ? decodeClaims(this.token.accessToken) : null
  }

  /** Called when the session ends; returns an unsubscribe function. */
  onSessionEnd (listener: (reason: SessionEndReason, error?: AuthError) => void): () => void {
    this.endListeners.add(listener)
    return () => this.endListeners.delete(listener)
  }

  /** Called whenever the held access token changes (sign-in, refresh, sign-out, another tab). */
  onChange (listener: () => void): () => void {
    this.changeListeners.add(listener)
    return () => this.changeListeners.delete(listener)
  }

  /**
   * Password sign-in, through the service's authorization challenge endpoint
   * (POST /oauth/authorize-challenge, DESIGN §3.16) and the exchange of its
   * code with PKCE (first-party.ts); no password grant. Throws
   * MfaRequiredError for an account with a second factor (its
   * `complete({ otp })`, or `completeWithPasskey()` when its `factors`
   * include 'passkey', finishes the sign-in), InvalidCredentialsError,
   * EmailNotVerifiedError (REQUIRE_EMAIL_VERIFICATION), RateLimitedError,
   * ServiceUnavailableError, ApiRequestError, NetworkError, or AuthError
   * `webcrypto_unavailable` where WebCrypto is missing (React Native needs a
   * polyfill). `scope` defaults to everything the client may have.
   */
  async login (email: string, password: string, options: { scope?: string } = {}): Promise<AccessTokenClaims | null> {
    return signIn(this.firstParty, { username: email, password }, options.scope)
  }

  // ---- first-party sign-in (first-party.ts) and second factors (mfa.ts)

  private get firstParty (): FirstPartyClient {
    return {
      clientId: this.clientId,
      post: (path, body) => this.post(path, body),
      accept: async (tokens) => {
        await this.accept(tokens as TokenResponseBody)
        return this.claims
      },
    }
  }

  private readonly signedIn = <T>(path: string, options?: RequestOptions): Promise<T> => this.request<T>(path, options)
  /** Starts setting up an authenticator app: the secret, its otpauth:// URI and a QR code. */
  startTotpEnrolment = (): Promise<mfa.TotpEnrolment> => mfa.startTotpEnrolment(this.signedIn)
  /** Activates it with the app's current code; resolves the recovery codes, to show once. */
  confirmTotp = (code: string): Promise<string[]> => mfa.confirmTotp(this.signedIn, code)
  /** Removes it (and its recovery codes) with a current code or the password; needs a recent sign-in. */
  removeTotp = (proof: { code: string } | { password: string }): Promise<void> => mfa.removeTotp(this.signedIn, proof)
  /** Replaces the recovery codes; needs a recent sign-in. */
  regenerateRecoveryCodes = (): Promise<string[]> => mfa.regenerateRecoveryCodes(this.signedIn)
  listFactors = (): Promise<mfa.SecondFactorList> => mfa.listFactors(this.signedIn)

  /** Creates an account and signs it in. Throws ApiRequestError (email_taken, weak_password, …), RateLimitedError. */
  async signUp (email: string, password: string): Promise<PublicUser> {
    const response = await this.post('/auth/signup', { email, password, client_id: this.clientId })
    if (!response.ok) throw await errorFromResponse(response, 'api')
    const body = (await response.json()) as TokenResponseBody & { user: PublicUser }
    await this.accept(body)
    return body.user
  }

  /**
   * Asks for a password-reset email. Resolves the same whether or not the
   * address has an account; throws RateLimitedError past the email budget.
   */
  async requestPasswordReset (email: string): Promise<void> {
    await this.publicCall('/auth/password-reset', { email })
  }

  /**
   * Sets a new password with the token of a reset link (the `token` of the
   * link's fragment). Every session of the user ends, this client's too: sign
   * in again. Throws ApiRequestError: weak_password (the link still works),
   * invalid_link_token (expired, used or replaced).
   */
  async confirmPasswordReset (token: string, newPassword: string): Promise<void> {
    await this.publicCall('/auth/password-reset/confirm', { token, newPassword })
  }

  /**
   * Spends the token of a verification or address-change link. Resolves what
   * it did; throws ApiRequestError invalid_link_token, or email_taken when the
   * new address was taken meanwhile.
   */
  async verifyEmail (token: string): Promise<{ purpose: 'email_verification' | 'email_change'; email: string }> {
    return (await this.publicCall('/auth/verify-email', { token })) as { purpose: 'email_verification' | 'email_change'; email: string }
  }

  /**
   * Spends the token of the one-click link a "your password was changed"
   * notice carries when passkeys or API keys were added since the address
   * was last confirmed: removes those passkeys (signing out the sessions they
   * signed in to, this client's too if it is one) and revokes those keys,
   * whichever are still there. Resolves how many of each went; throws
   * ApiRequestError invalid_link_token (expired, used or replaced).
   */
  async removeListedCredentials (token: string): Promise<RemovedCredentials> {
    return (await this.publicCall('/auth/credential-removal', { token })) as RemovedCredentials
  }

  /** Emails the signed-in user a new verification link. Throws ApiRequestError email_already_verified. */
  async resendVerification (): Promise<void> {
    await this.request('/auth/verify-email/resend', { method: 'POST' })
  }

  /**
   * Asks to move the signed-in account to `newEmail`: the change happens when
   * the link sent there is opened. Throws ApiRequestError invalid_credentials
   * (wrong password), RateLimitedError.
   */
  async changeEmail (newEmail: string, currentPassword: string): Promise<void> {
    await this.request('/users/me/email', { method: 'POST', json: { newEmail, currentPassword } })
  }

  // ---- Passkeys (passkeys.ts) ---------------------------------------------

  /**
   * Signs in with a passkey: the browser offers the user's discoverable
   * passkeys for this site and verifies the user (PIN, biometric); the
   * assertion goes to the authorization challenge endpoint and its code is
   * exchanged, as `login` does. The session counts as multi-factor (amr hwk
   * or swk, user, mfa). Throws InvalidCredentialsError (refused: unknown,
   * cloned, wrong origin…), EmailNotVerifiedError, RateLimitedError, or the
   * browser's DOMException (NotAllowedError: cancelled, or no passkey).
   */
  async signInWithPasskey (options: { scope?: string; signal?: AbortSignal } = {}): Promise<AccessTokenClaims | null> {
    const credential = await passkeyAssertion(this.passkeyTransport(), options.signal)
    return signIn(this.firstParty, { credential }, options.scope)
  }

  /**
   * Registers a new passkey for the signed-in user. Needs a confirmed
   * address (else ApiRequestError email_verification_required, 403) and a
   * recent sign-in, with the second factor on an account that has one: else
   * StepUpRequiredError (its acrValues name the mfa level), which
   * onStepUpRequired can answer with a step-up before the retry.
   */
  registerPasskey (name?: string, options: { signal?: AbortSignal } = {}): Promise<Passkey> {
    return registerPasskey(this.passkeyTransport(), name, options.signal)
  }

  listPasskeys (): Promise<Passkey[]> {
    return listPasskeys(this.passkeyTransport())
  }

  renamePasskey (id: string, name: string): Promise<Passkey> {
    return renamePasskey(this.passkeyTransport(), id, name)
  }

  /** Deletes one of the user's passkeys (needs a recent sign-in). */
  deletePasskey (id: string): Promise<void> {
    return deletePasskey(this.passkeyTransport(), id)
  }

  /** Steps up (see `stepUp`) with one of the signed-in user's passkeys: the browser asks the user to verify. */
  async stepUpWithPasskey (options: { signal?: AbortSignal } = {}): Promise<AccessTokenClaims | null> {
    return this.stepUp({ credential: await stepUpAssertion(this.passkeyTransport(), options.signal) })
  }

  private passkeyTransport (): PasskeyTransport {
    return { publicPost: (path) => this.publicCall(path, undefined), request: (path, options) => this.request(path, options) }
  }

  /** A token-endpoint grant (`params` besides client_id) that answers tokens, the step-up grant's: holds them, like login. */
  private async grant (params: Record<string, unknown>): Promise<AccessTokenClaims | null> {
    const response = await this.post('/auth/token', { ...params, client_id: this.clientId })
    if (!response.ok) throw await errorFromResponse(response, 'login')
    await this.accept((await response.json()) as TokenResponseBody)
    return this.claims
  }

  /**
   * Re-checks a factor inside the current session (the step-up grant) after
   * a StepUpRequiredError: the session's authentication becomes recent (and
   * multi-factor with a second factor), with a fresh access token and no new
   * session. A user with a second factor must give it, not the password.
   * Throws InvalidCredentialsError for a factor refused, SessionExpiredError
   * when there is no session, ApiRequestError, RateLimitedError.
   */
  async stepUp (proof: { password: string } | { otp: string } | { recoveryCode: string } | { credential: unknown }): Promise<AccessTokenClaims | null> {
    const params: Record<string, unknown> = { grant_type: STEP_UP_GRANT }
    if ('password' in proof) params.password = proof.password
    else if ('otp' in proof) params.otp = proof.otp
    else if ('recoveryCode' in proof) params.recovery_code = proof.recoveryCode
    else params.credential = proof.credential
    if (this.transport === 'body') {
      const refreshToken = await this.store.get()
      if (!refreshToken) throw new SessionExpiredError('not signed in', 0)
      params.refresh_token = refreshToken
    }
    return this.grant(params)
  }

  /**
   * Signs back in from the refresh cookie (cookie transport) or the stored
   * refresh token (body transport), e.g. after a page reload. Resolves false
   * when there is no live session; rethrows network and rate-limit errors.
   */
  async restore (): Promise<boolean> {
    if (this.token && !this.needsRefresh()) return true
    try {
      await this.refresh()
      return true
    } catch (error) {
      if (error instanceof SessionExpiredError || error instanceof SessionReusedError) return false
      throw error
    }
  }

  /**
   * Signs out: `current` (default) this session, `others` the user's other
   * sessions, `global` all of them. Local state is cleared (and other tabs
   * told) whatever the server answers, except for `others`.
   */
  async logout (scope: 'current' | 'others' | 'global' = 'current'): Promise<void> {
    try {
      if (this.transport === 'body' && scope === 'current') {
        const refreshToken = await this.store.get()
        if (refreshToken) {
          await this.post('/auth/revoke', { token: refreshToken, client_id: this.clientId })
        }
      } else {
        const query = scope === 'current' ? '' : `?scope=${scope}`
        let response = this.token
          ? await this.post(`/auth/logout${query}`, undefined, this.token.accessToken)
          : undefined
        // No access token, or an expired one: the refresh cookie names the session.
        if (this.transport === 'cookie' && (!response || response.status === 401)) {
          response = await this.post(`/auth/logout${query}`, undefined)
        }
        if (this.transport === 'body' && (!response || response.status === 401)) {
          response = await this.fetch(`/auth/logout${query}`, { method: 'POST' })
        }
        if (scope === 'others' && response && !response.ok) throw await errorFromResponse(response, 'api')
      }
    } finally {
      if (scope !== 'others') {
        await this.endSession('signed_out')
        this.coordinator.post({ type: 'signed_out' })
      }
    }
  }

  /**
   * A valid access token: the held one, or a fresh one when it is missing or
   * expires within the leeway. Throws SessionExpiredError when signed out.
   */
  async getAccessToken (): Promise<string> {
    if (this.token && !this.needsRefresh()) return this.token.accessToken
    return this.refresh()
  }

  /**
   * Refreshes the access token now. Concurrent calls share one request; with
   * other tabs, one refreshes while the others wait for its token.
   */
  refresh (): Promise<string> {
    if (!this.inflight) {
      const stale = this.token?.accessToken
      this.inflight = this.refreshShared(stale).finally(() => {
        this.inflight = undefined
      })
    }
    return this.inflight
  }

  /**
   * fetch with the access token. `input` is a path of the service (or a full
   * URL). On a 401 it refreshes once and retries once, so `init.body` must be
   * re-sendable (a string, URLSearchParams, FormData, Blob: not a stream).
   */
  async fetch (input: string, init: RequestInit = {}): Promise<Response> {
    const token = await this.getAccessToken()
    const response = await this.send(input, init, token)
    // Too weak or too old an authentication: a refresh keeps it so; the caller steps up.
    if (response.status !== 401 || needsStepUp(response)) return response
    // Another caller may already have replaced the token this request used.
    const fresh = this.token && this.token.accessToken !== token ? this.token.accessToken : await this.refresh()
    const retried = await this.send(input, init, fresh)
    if (retried.status === 401 && this.token?.accessToken === fresh) {
      // A brand-new token refused: the session was revoked or the user disabled.
      await this.endSession('expired', new SessionExpiredError('the session was revoked', 401))
    }
    return retried
  }

  /**
   * JSON convenience over `fetch`: resolves the parsed body (undefined for
   * 204) or throws a typed error: SessionExpiredError for a 401 that survived
   * a refresh, StepUpRequiredError (unless onStepUpRequired stepped up),
   * RateLimitedError, ApiRequestError with the service's code.
   */
  async request<T = unknown>(path: string, options: RequestOptions = {}): Promise<T> {
    try {
      return await this.requestOnce<T>(path, options)
    } catch (error) {
      if (!(error instanceof StepUpRequiredError) || !this.onStepUpRequired || !(await this.onStepUpRequired(error))) throw error
      return this.requestOnce<T>(path, options)
    }
  }

  private async requestOnce<T>(path: string, options: RequestOptions): Promise<T> {
    const { json, ...init } = options
    const headers = new Headers(init.headers)
    if (!headers.has('accept')) headers.set('accept', 'application/json')
    if (json !== undefined) headers.set('content-type', 'application/json')
    const response = await this.fetch(path, { ...init, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) })
    if (response.status === 401) {
      const error = await errorFromResponse(response, 'api')
      if (error instanceof StepUpRequiredError) throw error
      throw new SessionExpiredError(error.message, 401)
    }
    if (!response.ok) throw await errorFromResponse(response, 'api')
    if (response.status === 204) return undefined as T
    return (await response.json()) as T
  }

  /** Releases the BroadcastChannel. */
  close (): void {
    this.coordinator.close()
  }

  // ---- internals

  private needsRefresh (): boolean {
    return !this.token || this.now() >= this.token.expiresAt - this.token.leewayMs
  }

  private async refreshShared (stale: string | undefined): Promise<string> {
    return this.coordinator.withRefreshLock(async (waited) => {
      // While this tab waited for the lock, another may have refreshed and broadcast its token.
      if (this.token && this.token.accessToken !== stale && !this.needsRefresh()) return this.token.accessToken
      if (waited) {
        const adopted = await this.waitForTabToken(stale, TAB_TOKEN_WAIT_MS)
        if (adopted) return adopted
      }
      return this.refreshNow()
    })
  }

  /** Resolves with a token another tab broadcast (other than `stale`), or null after `ms`. */
  private waitForTabToken (stale: string | undefined, ms: number): Promise<string | null> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.token && this.token.accessToken !== stale && !this.needsRefresh()) {
          finish(this.token.accessToken)
        }
      }
      const finish = (value: string | null) => {
        clearTimeout(timer)
        off()
        resolve(value)
      }
      const timer = setTimeout(() => finish(null), ms)
      const off = this.onChange(check)
      check()
    })
  }

  private async refreshNow (): Promise<string> {
    const body: Record<string, string> = { grant_type: 'refresh_token', client_id: this.clientId }
    if (this.transport === 'body') {
      const refreshToken = await this.store.get()
      if (!refreshToken) {
        const error = new SessionExpiredError('not signed in', 0)
        await this.endSession('expired', error)
        throw error
      }
      body.refresh_token = refreshToken
    }
    const response = await this.post('/auth/token', body)
    if (!response.ok) {
      const error = await errorFromResponse(response, 'refresh')
      if (error instanceof SessionReusedError) await this.endSession('reused', error)
      else if (error instanceof SessionExpiredError) await this.endSession('expired', error)
      throw error
    }
    const tokens = (await response.json()) as TokenResponseBody
    await this.accept(tokens)
    return tokens.access_token
  }

  private async accept (tokens: TokenResponseBody): Promise<void> {
    if (this.transport === 'body') {
      if (!tokens.refresh_token) throw new AuthError('invalid_response', 'the service sent no refresh token in body transport')
      await this.store.set(tokens.refresh_token)
    }
    const lifetimeMs = tokens.expires_in * 1000
    this.token = {
      accessToken: tokens.access_token,
      expiresAt: this.now() + lifetimeMs,
      leewayMs: Math.min(this.leewayMs, lifetimeMs / 4),
    }
    if (this.transport === 'cookie') {
      this.coordinator.post({ type: 'token', accessToken: tokens.access_token, expiresAt: this.token.expiresAt })
    }
    this.emitChange()
  }

  private onTabMessage (message: TabMessage): void {
    if (message.type === 'token') {
      if (this.token && this.token.expiresAt >= message.expiresAt) return
      const lifetimeMs = Math.max(0, message.expiresAt - this.now())
      this.token = { accessToken: message.accessToken, expiresAt: message.expiresAt, leewayMs: Math.min(this.leewayMs, lifetimeMs / 4) }
      this.emitChange()
    } else if (message.type === 'signed_out') {
      void this.endSession('signed_out_elsewhere')
    }
  }

  private async endSession (reason: SessionEndReason, error?: AuthError): Promise<void> {
    const wasSignedIn = this.token !== undefined
    this.token = undefined
    if (this.transport === 'body') await this.store.delete()
    if (wasSignedIn || reason === 'reused') {
      for (const listener of this.endListeners) listener(reason, error)
    }
    this.emitChange()
  }

  private emitChange (): void {
    for (const listener of this.changeListeners) listener()
  }

  private url (path: string): string {
    return /^https?:\/\//i.test(path) ? path : `${this.baseUrl}${path.startsWith('/') ? '' : '/'}${path}`
  }

  private async send (input: string, init: RequestInit, accessToken: string): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${accessToken}`)
    return this.rawFetch(this.url(input), { ...init, headers })
  }

  /** A POST that needs no session; the parsed body (undefined when empty) or a typed error. */
  private async publicCall (path: string, body: unknown): Promise<unknown> {
    const response = await this.post(path, body)
    if (!response.ok) throw await errorFromResponse(response, 'api')
    return response.status === 204 ? undefined : response.json()
  }

  /**
   * A POST to the service (/auth, /oauth/authorize-challenge): JSON body, and in cookie
   * transport the cookie and the CSRF header (X-Requested-With; the browser adds Origin).
   */
  private async post (path: string, body: unknown, accessToken?: string): Promise<Response> {
    const headers = new Headers({ accept: 'application/json' })
    if (body !== undefined) headers.set('content-type', 'application/json')
    if (accessToken) headers.set('authorization', `Bearer ${accessToken}`)
    if (this.transport === 'cookie') headers.set('x-requested-with', this.requestedWith)
    return this.rawFetch(this.url(path), {
      method: 'POST',
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      credentials: this.transport === 'cookie' ? 'include' : 'omit',
    })
  }

  private async rawFetch (url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, init)
    } catch (error) {
      if ((error as { name?: string })?.name === 'AbortError') throw error
      throw new NetworkError(`request to ${url} failed: ${(error as Error)?.message ?? String(error)}`, error)
    }
  }
}

/** The payload of a JWT, unverified (the service verifies; the client only reads role and expiry for display). */
export function decodeClaims (jwt: string): AccessTokenClaims | null {
  try {
    const part = jwt.split('.')[1]
    if (!part) return null
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4))
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
    return JSON.parse(new TextDecoder().decode(bytes)) as AccessTokenClaims
  } catch {
    return null
  }
}
