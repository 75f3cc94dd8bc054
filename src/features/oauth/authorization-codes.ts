import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { SqlPool } from '../../db/sql-pool.js'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import type { VerifiedLogin } from '../accounts/accounts.js'
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

export type Redemption =
  | { ok: true; grant: CodeGrant; codeId: string; sessionId: string; login: VerifiedLogin }
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
    private readonly sql: SqlPool,
    private readonly hashKey: Buffer,
    private readonly accountKey: Buffer,
    private readonly options: { now: () => number; revokeSession: (sessionId: string, userId: string) => Promise<void> }
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
   * Spends a code for `clientId` presenting `redirectUri` and `codeVerifier`.
   * One statement marks it used, names the session the exchange is about to
   * start (so a second use can end it), and reads what the exchange needs:
   * whether the browser session it came from is still live, and the account
   * as it is now (the session then starts only while it stays so).
   */
  async redeem (code: string, presented: { clientId: string; redirectUri: string | undefined; codeVerifier: string }, ip: string | undefined): Promise<Redemption> {
    const codeHash = this.hash(code)
    const now = new Date(this.options.now())
    const sessionId = randomUUID()
    const { rows } = await this.sql.query<RedeemedRow>({ name: 'redeem_authorization_code', text: REDEEM_STATEMENT, values: [codeHash, now, sessionId] })
    const row = rows[0]
    if (!row) return this.secondUse(codeHash, now, ip)
    // Checked after the code is spent: a code presented with a wrong binding is dead too (OAuth 2.1 §4.1.3).
    if (row.expires_at <= now) return { ok: false, reason: 'expired' }
    if (row.client_id !== presented.clientId) return { ok: false, reason: 'client_mismatch' }
    if (presented.redirectUri !== undefined && row.redirect_uri !== presented.redirectUri) return { ok: false, reason: 'redirect_uri_mismatch' }
    if (!pkceMatches(presented.codeVerifier, row.code_challenge)) return { ok: false, reason: 'pkce_failed' }
    // A sign-out, a password change or a disabling in the code's minute ends it too: the
    // browser session's end says so, or (a code without one) the password hash it remembers.
    const signInLive = row.browser_session_id !== null
      ? row.browser_live
      : row.password_hash_mac !== null && isPasswordHashMac(this.accountKey, row.password_hash_mac, row.password_hash)
    if (!signInLive || row.role === null || row.disabled !== false || row.email === null || row.created_at === null) return { ok: false, reason: 'sign_in_ended' }
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
    const role = row.role as Role
    const login: VerifiedLogin = {
      user: { id: row.user_id, email: row.email, role, disabled: false, emailVerifiedAt: row.email_verified_at, createdAt: row.created_at },
      verified: { role, passwordHash: row.password_hash },
    }
    return { ok: true, grant, codeId: row.id, sessionId, login }
  }

  private async secondUse (codeHash: Uint8Array<ArrayBuffer>, now: Date, ip: string | undefined): Promise<Redemption> {
    const reused = await this.db.authorizationCode.updateManyAndReturn({
      where: { codeHash, usedAt: { not: null } },
      data: { reusedAt: now },
    })
    const row = reused[0]
    if (!row) return { ok: false, reason: 'unknown' }
    if (row.sessionId) await this.options.revokeSession(row.sessionId, row.userId)
    await recordAuditEvent(this.db, { type: 'authorization_code_reused', userId: row.userId, ip, details: { clientId: row.clientId, sessionId: row.sessionId } })
    return { ok: false, reason: 'reused' }
  }

  private hash (code: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, `authorization_code:${code}`))
  }
}

interface RedeemedRow {
  id: string
  client_id: string
  user_id: string
  redirect_uri: string
  code_challenge: string
  scope: string
  nonce: string | null
  browser_session_id: string | null
  password_hash_mac: Uint8Array | null
  passkey_id: string | null
  amr: string[] | null
  auth_time: Date
  expires_at: Date
  browser_live: boolean
  role: string | null
  password_hash: string | null
  disabled: boolean | null
  email: string | null
  email_verified_at: Date | null
  created_at: Date | null
}

/**
 * $1 the code's hash, $2 now, $3 the session its exchange will start. Spends
 * an unspent code and answers it with the state of its browser session and
 * of its user (null columns: gone).
 */
const REDEEM_STATEMENT = `
  WITH spent AS (
    UPDATE authorization_codes SET used_at = $2, session_id = $3
    WHERE code_hash = $1 AND used_at IS NULL
    RETURNING id, client_id, user_id, redirect_uri, code_challenge, scope, nonce, browser_session_id, password_hash_mac, passkey_id, amr, auth_time, expires_at
  )
  SELECT c.*,
         (b.id IS NOT NULL AND b.user_id = c.user_id AND b.revoked_at IS NULL AND b.idle_expires_at > $2 AND b.absolute_expires_at > $2) AS browser_live,
         u.role::text AS role, u.password_hash, u.disabled, u.email, u.email_verified_at, u.created_at
  FROM spent AS c
  LEFT JOIN sessions AS b ON b.id = c.browser_session_id
  LEFT JOIN users AS u ON u.id = c.user_id`

/** RFC 7636 §4.6 with S256: BASE64URL(SHA256(code_verifier)) equals the challenge (compared in constant time). */
export function pkceMatches (codeVerifier: string, codeChallenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(codeVerifier, 'ascii').digest('base64url'))
  const expected = Buffer.from(codeChallenge)
  return computed.length === expected.length && timingSafeEqual(computed, expected)
}
