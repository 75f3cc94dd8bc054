import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { hmacSha256 } from '../../shared/derived-keys.js'

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
  browserSessionId: string
  amr: string[]
  authTime: Date
}

export type Redemption =
  | { ok: true; grant: CodeGrant; codeId: string; sessionId: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'reused' | 'client_mismatch' | 'redirect_uri_mismatch' | 'pkce_failed' }

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
    private readonly options: { now: () => number; revokeSession: (sessionId: string, userId: string) => Promise<void> }
  ) {}

  async issue (grant: CodeGrant): Promise<string> {
    const code = randomBytes(32).toString('base64url')
    const now = this.options.now()
    await this.db.authorizationCode.create({
      data: { ...grant, codeHash: this.hash(code), expiresAt: new Date(now + AUTHORIZATION_CODE_TTL_SECONDS * 1000) },
    })
    return code
  }

  /**
   * Spends a code for `clientId` presenting `redirectUri` and `codeVerifier`.
   * The one conditional UPDATE that marks it used also names the session the
   * exchange is about to start, so a concurrent second use finds it.
   */
  async redeem (code: string, presented: { clientId: string; redirectUri: string; codeVerifier: string }, ip: string | undefined): Promise<Redemption> {
    const codeHash = this.hash(code)
    const now = new Date(this.options.now())
    const sessionId = randomUUID()
    const spent = await this.db.authorizationCode.updateManyAndReturn({
      where: { codeHash, usedAt: null },
      data: { usedAt: now, sessionId },
    })
    const row = spent[0]
    if (!row) return this.secondUse(codeHash, now, ip)
    // Checked after the code is spent: a code presented with a wrong binding is dead too (OAuth 2.1 §4.1.3).
    if (row.expiresAt <= now) return { ok: false, reason: 'expired' }
    if (row.clientId !== presented.clientId) return { ok: false, reason: 'client_mismatch' }
    if (row.redirectUri !== presented.redirectUri) return { ok: false, reason: 'redirect_uri_mismatch' }
    if (!pkceMatches(presented.codeVerifier, row.codeChallenge)) return { ok: false, reason: 'pkce_failed' }
    const grant: CodeGrant = {
      clientId: row.clientId,
      userId: row.userId,
      redirectUri: row.redirectUri,
      codeChallenge: row.codeChallenge,
      scope: row.scope,
      nonce: row.nonce,
      browserSessionId: row.browserSessionId,
      amr: row.amr,
      authTime: row.authTime,
    }
    return { ok: true, grant, codeId: row.id, sessionId }
  }

  /** Whether a second use of the code was seen since `redeem` (the exchange then ends the session it started). */
  async reusedSince (codeId: string): Promise<boolean> {
    const row = await this.db.authorizationCode.findUnique({ where: { id: codeId }, select: { reusedAt: true } })
    return row?.reusedAt != null
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

/** RFC 7636 §4.6 with S256: BASE64URL(SHA256(code_verifier)) equals the challenge (compared in constant time). */
export function pkceMatches (codeVerifier: string, codeChallenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(codeVerifier, 'ascii').digest('base64url'))
  const expected = Buffer.from(codeChallenge)
  return computed.length === expected.length && timingSafeEqual(computed, expected)
}
