import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import type { VerifiedLogin } from '../accounts/accounts.js'
import type { CodeStartRow, SessionContext, SessionGrant, SessionLifetimes, SessionStore } from '../sessions/sessions.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { hmacSha256, isPasswordHashMac, passwordHashMac } from '../../shared/derived-keys.js'

/** OAuth 2.1 §4.1.2: a short lifetime; ours is 60 s (DESIGN §3.15). */
export const AUTHORIZATION_CODE_TTL_SECONDS = 60

/** What a code was issued for: the client, redirect URI and PKCE challenge it is bound to, and the sign-in behind it. */
export interface CodeGrant {
  clientId: string
  userId: string
  redirectUri: string
  codeChallenge: string
  scope: string
  nonce: string | null
  /** The browser session the sign-in belongs to; null for the authorization challenge endpoint's codes. */
  browserSessionId: string | null
  amr: string[]
  authTime: Date
  /** The passkey the sign-in proved, if any. */
  passkeyId?: string | null
}

/** A code without a browser session remembers the password hash its sign-in checked (as a keyed hash). */
export type CodeRequest = CodeGrant & { verifiedPasswordHash?: string | null }

export type Exchange =
  | { ok: true; grant: CodeGrant; login: VerifiedLogin; started: { grant: SessionGrant; refreshToken: string } }
  | { ok: false; reason: 'unknown' | 'expired' | 'reused' | 'client_mismatch' | 'redirect_uri_mismatch' | 'pkce_failed' | 'sign_in_ended' }

/**
 * Authorization codes (RFC 6749 §4.1, OAuth 2.1 §4.1.3, RFC 9700 §4.5):
 * 256 random bits, stored as a keyed hash only, single use under any
 * concurrency, bound to the client, the redirect URI and the PKCE
 * challenge. A second use of a code revokes the session its first use
 * started, even while that first exchange is still starting it.
 */
export class AuthorizationCodes {
  constructor (
    private readonly db: PrismaClient,
    private readonly hashKey: Buffer,
    private readonly accountKey: Buffer,
    private readonly options: { now: () => number; sessions: SessionStore }
  ) {}

  async issue (request: CodeRequest): Promise<string> {
    const { verifiedPasswordHash, ...grant } = request
    if (grant.browserSessionId === null && verifiedPasswordHash === undefined) throw new Error('a code without a browser session must remember the account it checked')
    const code = randomBytes(32).toString('base64url')
    const now = this.options.now()
    await this.db.authorizationCode.create({
      data: {
        ...grant,
        codeHash: this.hash(code),
        expiresAt: new Date(now + AUTHORIZATION_CODE_TTL_SECONDS * 1000),
        ...(verifiedPasswordHash !== undefined ? { passwordHashMac: new Uint8Array(passwordHashMac(this.accountKey, verifiedPasswordHash)) } : {}),
      },
    })
    return code
  }

  /**
   * Exchanges a code presented by `clientId` with `codeVerifier` (and a
   * redirect URI, when the request sends one): one statement spends it and,
   * if everything it is bound to holds, starts the session
   * (SessionStore.startFromCode). Whatever fails, the code is spent (OAuth
   * 2.1 §4.1.3). A code without a browser session is checked here against the
   * password hash it remembers; a changed password ends the session it
   * started at once (its refresh token never left).
   */
  async exchange (
    code: string,
    presented: { clientId: string; redirectUri: string | undefined; codeVerifier: string },
    session: { lifetimes: { user: SessionLifetimes; admin: SessionLifetimes }; context: SessionContext }
  ): Promise<Exchange> {
    const codeHash = this.hash(code)
    const result = await this.options.sessions.startFromCode({
      codeHash,
      clientId: presented.clientId,
      codeChallenge: s256(presented.codeVerifier),
      redirectUri: presented.redirectUri,
      lifetimes: session.lifetimes,
      context: session.context,
    })
    if (!result) return this.secondUse(codeHash, new Date(this.options.now()), session.context.ip)
    const { code: row, started } = result
    const accountHolds = row.browser_session_id !== null ||
      (row.password_hash_mac !== null && isPasswordHashMac(this.accountKey, row.password_hash_mac, row.password_hash))
    if (!started || !accountHolds || row.role === null || row.email === null || row.created_at === null) {
      if (started) await this.options.sessions.revoke({ sessionId: started.grant.sessionId }, 'sign_in_ended')
      return { ok: false, reason: whyRefused(row, presented, new Date(this.options.now())) }
    }
    const role = row.role as Role
    const grant: CodeGrant = {
      clientId: row.client_id,
      userId: row.user_id,
      redirectUri: row.redirect_uri,
      codeChallenge: row.code_challenge,
      scope: row.scope,
      nonce: row.nonce,
      browserSessionId: row.browser_session_id,
      amr: row.amr ?? [],
      authTime: row.auth_time,
      passkeyId: row.passkey_id,
    }
    const login: VerifiedLogin = {
      user: { id: row.user_id, email: row.email, role, disabled: false, emailVerifiedAt: row.email_verified_at, createdAt: row.created_at },
      verified: { role, passwordHash: row.password_hash },
    }
    return { ok: true, grant, login, started }
  }

  private async secondUse (codeHash: Uint8Array<ArrayBuffer>, now: Date, ip: string | undefined): Promise<Exchange> {
    const reused = await this.db.authorizationCode.updateManyAndReturn({
      where: { codeHash, usedAt: { not: null } },
      data: { reusedAt: now },
    })
    const row = reused[0]
    if (!row) return { ok: false, reason: 'unknown' }
    if (row.sessionId) await this.options.sessions.revoke({ sessionId: row.sessionId, userId: row.userId }, 'authorization_code_reused')
    await recordAuditEvent(this.db, { type: 'authorization_code_reused', userId: row.userId, ip, details: { clientId: row.clientId, sessionId: row.sessionId } })
    return { ok: false, reason: 'reused' }
  }

  private hash (code: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, `authorization_code:${code}`))
  }
}

/** Why a spent code started no session: the first of its bindings that failed, or the sign-in behind it. */
function whyRefused (row: CodeStartRow, presented: { clientId: string; redirectUri: string | undefined; codeVerifier: string }, now: Date): Exclude<Exchange, { ok: true }>['reason'] {
  if (row.expires_at <= now) return 'expired'
  if (row.client_id !== presented.clientId) return 'client_mismatch'
  if (presented.redirectUri !== undefined && row.redirect_uri !== presented.redirectUri) return 'redirect_uri_mismatch'
  if (!pkceMatches(presented.codeVerifier, row.code_challenge)) return 'pkce_failed'
  return 'sign_in_ended'
}

/** RFC 7636 §4.6's S256: BASE64URL(SHA256(ASCII(code_verifier))). */
function s256 (codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url')
}

/** RFC 7636 §4.6 with S256: BASE64URL(SHA256(code_verifier)) equals the challenge (compared in constant time). */
export function pkceMatches (codeVerifier: string, codeChallenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(codeVerifier, 'ascii').digest('base64url'))
  const expected = Buffer.from(codeChallenge)
  return computed.length === expected.length && timingSafeEqual(computed, expected)
}
