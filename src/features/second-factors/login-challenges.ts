import { randomBytes } from 'node:crypto'
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import { DomainError } from '../../errors.js'
import type { Transport } from '../tokens/clients.js'
import { hmacSha256, isPasswordHashMac, passwordHashMac } from '../../shared/derived-keys.js'
import type { VerifiedAccount } from '../sessions/sessions.js'

/**
 * The token of a login's second step (mfa_required): 256 random bits,
 * opaque, shown once, stored as a keyed hash, single use, five minutes, for
 * the client and transport of the first step only. It remembers the account
 * as the password check found it (role, and a keyed hash of the password
 * hash, never the hash itself): the session starts only if both still hold.
 */
export const MFA_TOKEN_PREFIX = 'mfa_'
export const MFA_TOKEN_TTL_SECONDS = 300
/** Wrong codes one token takes; the last of them spends it (a new password login is needed). */
export const MFA_TOKEN_MAX_FAILURES = 5
const MFA_TOKEN_PATTERN = /^mfa_[A-Za-z0-9_-]{43}$/

export interface MfaTokenRequest {
  userId: string
  clientId: string
  transport: Transport
  scope: string
  verified: VerifiedAccount
  /** The PKCE challenge of an authorization challenge's flow; absent for the mfa-otp grant's. */
  codeChallenge?: string | undefined
}

/** A token just spent by its request: whom it is for and what the first step verified. */
export interface ClaimedMfaToken {
  id: string
  userId: string
  scope: string
  role: Role
  failedAttempts: number
  passwordHashMac: Uint8Array
}

export class LoginChallenges {
  constructor (
    private readonly hashKey: Buffer,
    private readonly now: () => number
  ) {}

  private hash (token: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, `mfa_token:${token}`))
  }

  async issue (db: PrismaClient | Prisma.TransactionClient, request: MfaTokenRequest): Promise<string> {
    const token = `${MFA_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
    const now = this.now()
    await db.mfaToken.create({
      data: {
        userId: request.userId,
        tokenHash: this.hash(token),
        clientId: request.clientId,
        transport: request.transport,
        scope: request.scope,
        role: request.verified.role,
        passwordHashMac: new Uint8Array(passwordHashMac(this.hashKey, request.verified.passwordHash)),
        codeChallenge: request.codeChallenge ?? null,
        expiresAt: new Date(now + MFA_TOKEN_TTL_SECONDS * 1000),
        createdAt: new Date(now),
      },
    })
    return token
  }

  /**
   * Spends the token for this client and transport: one conditional UPDATE,
   * so of concurrent presentations exactly one gets the row (the others wait
   * for its transaction and then find it used, or unspent again after a
   * wrong code). invalid_grant, saying why, otherwise.
   */
  async claim (tx: Prisma.TransactionClient, token: string, by: { clientId: string; transport: Transport }): Promise<ClaimedMfaToken> {
    if (!MFA_TOKEN_PATTERN.test(token)) throw new DomainError('invalid_grant', 'the mfa_token is invalid')
    const now = new Date(this.now())
    const tokenHash = this.hash(token)
    const rows = await tx.mfaToken.updateManyAndReturn({
      where: { tokenHash, clientId: by.clientId, transport: by.transport, usedAt: null, expiresAt: { gt: now } },
      data: { usedAt: now },
      select: { id: true, userId: true, scope: true, role: true, failedAttempts: true, passwordHashMac: true },
    })
    const claimed = rows[0]
    if (claimed) return claimed
    throw new DomainError('invalid_grant', await this.refusal(tx, tokenHash, by))
  }

  /**
   * The user a token is for, if it could be claimed now for this client and
   * transport (`by`; any, when omitted), without claiming it: a passkey
   * step verifies its assertion (which spends its own challenge) before the
   * token is claimed. invalid_grant, saying why, otherwise.
   */
  async peek (db: PrismaClient | Prisma.TransactionClient, token: string, by?: { clientId: string; transport: Transport }): Promise<{ userId: string; codeChallenge: string | null }> {
    if (!MFA_TOKEN_PATTERN.test(token)) throw new DomainError('invalid_grant', 'the mfa_token is invalid')
    const tokenHash = this.hash(token)
    const row = await db.mfaToken.findFirst({
      where: { tokenHash, usedAt: null, expiresAt: { gt: new Date(this.now()) }, ...(by ? { clientId: by.clientId, transport: by.transport } : {}) },
      select: { userId: true, codeChallenge: true },
    })
    if (row) return row
    throw new DomainError('invalid_grant', await this.refusal(db, tokenHash, by))
  }

  /** Why a token cannot be claimed by `by`: told only to whoever holds it. */
  private async refusal (db: PrismaClient | Prisma.TransactionClient, tokenHash: Uint8Array<ArrayBuffer>, by?: { clientId: string; transport: Transport }): Promise<string> {
    const row = await db.mfaToken.findUnique({ where: { tokenHash }, select: { clientId: true, transport: true, usedAt: true, expiresAt: true } })
    if (!row) return 'the mfa_token is invalid'
    if (by && row.clientId !== by.clientId) return 'the mfa_token was issued to another client'
    if (by && row.transport !== by.transport) return `the mfa_token was issued for the ${row.transport} transport`
    if (row.usedAt) return 'the mfa_token was already used; sign in again'
    return 'the mfa_token expired; sign in again'
  }

  /**
   * After a wrong code: the token counts the failure and is usable again,
   * unless that was its last allowed one. True when it is still usable.
   */
  async recordFailure (tx: Prisma.TransactionClient, claimed: ClaimedMfaToken): Promise<boolean> {
    const failedAttempts = claimed.failedAttempts + 1
    const usable = failedAttempts < MFA_TOKEN_MAX_FAILURES
    await tx.mfaToken.update({ where: { id: claimed.id }, data: { failedAttempts, ...(usable ? { usedAt: null } : {}) } })
    return usable
  }

  /** Whether the account is still as the token's first step verified it. */
  stillVerified (claimed: ClaimedMfaToken, current: VerifiedAccount): boolean {
    return claimed.role === current.role && isPasswordHashMac(this.hashKey, claimed.passwordHashMac, current.passwordHash)
  }
}
