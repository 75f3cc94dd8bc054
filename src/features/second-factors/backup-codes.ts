import { randomInt } from 'node:crypto'
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import { hmacSha256 } from '../../shared/derived-keys.js'

/**
 * Recovery codes: the way in when the authenticator is lost, without an
 * admin. Ten per set, shown once, stored one keyed hash per code, each spent
 * by deleting its row (one statement: of any number of concurrent
 * presentations one deletes it).
 *
 * Crockford's base32 alphabet without its look-alikes, and without 0 and 1
 * too: nothing left reads as another character (O/0, I/L/1). 30 symbols, 12
 * of them: 58.9 bits a code, shown in three groups of four.
 */
export const RECOVERY_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTVWXYZ'
export const RECOVERY_CODE_LENGTH = 12
export const RECOVERY_CODE_COUNT = 10
const GROUP = 4
const CODE_PATTERN = new RegExp(`^[${RECOVERY_CODE_ALPHABET}]{${RECOVERY_CODE_LENGTH}}$`)

/** A new code, grouped for reading: XXXX-XXXX-XXXX. */
export function generateRecoveryCode (): string {
  let code = ''
  for (let i = 0; i < RECOVERY_CODE_LENGTH; i++) code += RECOVERY_CODE_ALPHABET[randomInt(RECOVERY_CODE_ALPHABET.length)]
  return code.match(new RegExp(`.{${GROUP}}`, 'g'))!.join('-')
}

/** A code as typed (any case, with or without its hyphens and spaces) in its stored form, or null when it cannot be one. */
export function normalizeRecoveryCode (input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]+/g, '')
  return CODE_PATTERN.test(code) ? code : null
}

type Db = PrismaClient | Prisma.TransactionClient

export class BackupCodes {
  constructor (private readonly hashKey: Buffer) {}

  /** Keyed by the user too: a code means nothing for another account. */
  private hash (userId: string, normalized: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, `${userId}:${normalized}`))
  }

  /** A new set for the user, replacing the whole old one; the codes, to be shown once. */
  async replace (tx: Prisma.TransactionClient, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode)
    await tx.recoveryCode.deleteMany({ where: { userId } })
    await tx.recoveryCode.createMany({ data: codes.map((code) => ({ userId, codeHash: this.hash(userId, normalizeRecoveryCode(code)!) })) })
    return codes
  }

  /** Spends a code: true for the one caller whose DELETE removed its row. */
  async spend (db: Db, userId: string, code: string): Promise<boolean> {
    const normalized = normalizeRecoveryCode(code)
    if (normalized === null) return false
    const { count } = await db.recoveryCode.deleteMany({ where: { userId, codeHash: this.hash(userId, normalized) } })
    return count === 1
  }

  async remaining (db: Db, userId: string): Promise<number> {
    return db.recoveryCode.count({ where: { userId } })
  }

  async remove (tx: Prisma.TransactionClient, userId: string): Promise<number> {
    const { count } = await tx.recoveryCode.deleteMany({ where: { userId } })
    return count
  }
}
