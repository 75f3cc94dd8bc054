import { randomBytes } from 'node:crypto'
import type { Prisma } from '../../generated/prisma/client.js'
import type { AccountTokenPurpose } from '../../generated/prisma/enums.js'
import { DomainError } from '../../errors.js'
import { hmacSha256, isPasswordHashMac, passwordHashMac } from '../../shared/derived-keys.js'

/**
 * The secrets of emailed links (password reset, email verification, address
 * change, credential removal): 256 bits of randomness, shown once (in the message, itself kept
 * encrypted until sent), stored only as a keyed hash, single use, short-lived.
 */

/** 32 random bytes in base64url, as refresh tokens. */
export const LINK_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$'

export interface SpentToken {
  userId: string
  purpose: AccountTokenPurpose
  newEmail: string | null
  passwordHashMac: Uint8Array | null
  details: unknown
}

/**
 * Voids every unspent link secret of a user (address changes, verification,
 * password-reset and credential-removal links), in the caller's transaction:
 * what a password reset or change, a disabling and an admin's reset do, so
 * that no link asked for before the account was secured outlives it. The
 * rows deleted.
 */
export async function voidUnspentLinks (tx: Prisma.TransactionClient, userId: string): Promise<number> {
  const { count } = await tx.accountToken.deleteMany({ where: { userId, usedAt: null } })
  return count
}

export class LinkSecrets {
  constructor (
    private readonly hashKey: Buffer,
    private readonly now: () => number
  ) {}

  private hash (secret: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, secret))
  }

  /** What an address-change link remembers of the password it was asked with (never the hash itself). */
  passwordMac (passwordHash: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(passwordHashMac(this.hashKey, passwordHash))
  }

  /** Whether `passwordHash` is the one `mac` was made of. */
  samePassword (mac: Uint8Array, passwordHash: string): boolean {
    return isPasswordHashMac(this.hashKey, mac, passwordHash)
  }

  /**
   * A new secret for `purpose`, in the caller's transaction (the one that
   * writes the message carrying it). It supersedes every unused secret of the
   * same purpose of the user: only the newest link works.
   */
  async issue (
    tx: Prisma.TransactionClient,
    input: {
      userId: string
      purpose: AccountTokenPurpose
      ttlSeconds: number
      newEmail?: string
      /** passwordMac of the account's password hash when the link was asked for (address changes). */
      passwordHashMac?: Uint8Array<ArrayBuffer>
      /** What the link acts on (a credential removal's ids); never a secret. */
      details?: Prisma.InputJsonValue
    }
  ): Promise<string> {
    const secret = randomBytes(32).toString('base64url')
    const now = this.now()
    await tx.accountToken.deleteMany({ where: { userId: input.userId, purpose: input.purpose, usedAt: null } })
    await tx.accountToken.create({
      data: {
        userId: input.userId,
        purpose: input.purpose,
        tokenHash: this.hash(secret),
        newEmail: input.newEmail ?? null,
        passwordHashMac: input.passwordHashMac ?? null,
        ...(input.details === undefined ? {} : { details: input.details }),
        expiresAt: new Date(now + input.ttlSeconds * 1000),
        createdAt: new Date(now),
      },
    })
    return secret
  }

  /**
   * Spends a secret of one of `purposes`: one conditional UPDATE, so of any
   * number of concurrent requests with one secret exactly one gets its row
   * (the others wait for its commit, then find it used). Throws
   * invalid_link_token, saying why, when it cannot be spent. A caller whose
   * later checks fail throws, and its transaction's rollback unspends it.
   */
  async spend (tx: Prisma.TransactionClient, secret: string, purposes: AccountTokenPurpose[]): Promise<SpentToken> {
    const now = new Date(this.now())
    const rows = await tx.accountToken.updateManyAndReturn({
      where: { tokenHash: this.hash(secret), purpose: { in: purposes }, usedAt: null, expiresAt: { gt: now } },
      data: { usedAt: now },
      select: { userId: true, purpose: true, newEmail: true, passwordHashMac: true, details: true },
    })
    const spent = rows[0]
    if (spent) return spent
    throw new DomainError('invalid_link_token', await this.refusal(tx, secret, purposes, now))
  }

  /**
   * The user a secret was issued to, whatever its state; null for an
   * unknown one. Lets a caller lock the user's row before spending the
   * secret: every transaction that changes both takes the user first.
   */
  async userOf (db: Prisma.TransactionClient, secret: string): Promise<string | null> {
    const row = await db.accountToken.findUnique({ where: { tokenHash: this.hash(secret) }, select: { userId: true } })
    return row?.userId ?? null
  }

  /** Throws what spend would when the secret cannot be spent now, without spending it (a cheap check before costly work). */
  async check (db: Prisma.TransactionClient, secret: string, purposes: AccountTokenPurpose[]): Promise<void> {
    const now = new Date(this.now())
    const row = await db.accountToken.findUnique({ where: { tokenHash: this.hash(secret) }, select: { purpose: true, usedAt: true, expiresAt: true } })
    if (!row || !purposes.includes(row.purpose) || row.usedAt !== null || row.expiresAt <= now) {
      throw new DomainError('invalid_link_token', await this.refusal(db, secret, purposes, now))
    }
  }

  /** Why a secret was refused: told only to whoever holds it, so it reveals nothing new. */
  private async refusal (tx: Prisma.TransactionClient, secret: string, purposes: AccountTokenPurpose[], now: Date): Promise<string> {
    const row = await tx.accountToken.findUnique({ where: { tokenHash: this.hash(secret) }, select: { purpose: true, usedAt: true, expiresAt: true } })
    if (!row || !purposes.includes(row.purpose)) return 'this link is not valid (it may have been replaced by a newer one); ask for a new one'
    if (row.usedAt) return 'this link was already used; ask for a new one'
    if (row.expiresAt <= now) return 'this link has expired; ask for a new one'
    return 'this link is not valid; ask for a new one'
  }
}
