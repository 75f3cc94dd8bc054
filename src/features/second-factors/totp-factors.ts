import { randomBytes, timingSafeEqual } from 'node:crypto'
import { HOTP, Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { seal, unseal } from '../../shared/derived-keys.js'

/**
 * TOTP authenticators (RFC 6238 with the defaults every authenticator app
 * reads from an otpauth:// URI: HMAC-SHA-1, 6 digits, 30-second steps). The
 * secret is 160 bits (RFC 4226 §4 R6), kept encrypted and bound to its user;
 * a code counts once: only for a time step newer than the last one accepted.
 */

export const TOTP_PERIOD_SECONDS = 30
export const TOTP_DIGITS = 6
/** Steps of clock drift accepted either side of now (RFC 6238 §5.2 recommends at most one). */
export const TOTP_WINDOW = 1
const SECRET_BYTES = 20
/** A pending enrolment not confirmed within this is void; retention deletes it. */
export const PENDING_ENROLMENT_TTL_MS = 3_600_000
/** Six digits, as typed: spaces inside are dropped first (apps show "123 456"). */
const OTP_PATTERN = /^\d{6}$/

/** A code as typed, without its spaces, or null when it cannot be a TOTP code. */
export function normalizeOtp (input: string): string | null {
  const code = input.replace(/\s+/g, '')
  return OTP_PATTERN.test(code) ? code : null
}

/** The RFC 6238 time step of an instant. */
export function timeStep (nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS)
}

/** The code of `secret` at time step `step`. */
export function codeAt (secret: Uint8Array, step: number): string {
  return HOTP.generate({ secret: new Secret({ buffer: Uint8Array.from(secret).buffer }), counter: step, digits: TOTP_DIGITS, algorithm: 'SHA1' })
}

/**
 * The time step within the window around now whose code is `code` and that
 * is newer than `lastUsedStep`, or null. Every step of the window is
 * compared, in constant time, whatever matches.
 */
export function acceptedStep (secret: Uint8Array, code: string, nowMs: number, lastUsedStep: number): number | null {
  const current = timeStep(nowMs)
  const given = Buffer.from(code)
  let accepted: number | null = null
  for (let step = current - TOTP_WINDOW; step <= current + TOTP_WINDOW; step++) {
    const expected = Buffer.from(codeAt(secret, step))
    const matches = expected.length === given.length && timingSafeEqual(expected, given)
    if (matches && step > lastUsedStep && accepted === null) accepted = step
  }
  return accepted
}

export interface TotpEnrolment {
  /** The secret in base32, for typing into an app by hand. */
  secret: string
  otpauthUri: string
  /** The URI as a QR code, an SVG data URL. */
  qrCode: string
}

export interface TotpStatus {
  confirmed: boolean
  createdAt: Date
  confirmedAt: Date | null
}

type Db = PrismaClient | Prisma.TransactionClient

export class TotpFactors {
  constructor (
    private readonly encryptionKey: Buffer,
    private readonly options: { issuer: string; now: () => number }
  ) {}

  /** Associated data of a user's secret: a ciphertext copied to another user's row does not decrypt. */
  private aad (userId: string): string {
    return `totp_factor:${userId}`
  }

  /** The secret, or null when the stored ciphertext does not open (copied from another row, tampered): no code then matches. */
  private secretOf (row: { userId: string; secretEncrypted: Uint8Array }): Buffer | null {
    try {
      return unseal(this.encryptionKey, row.secretEncrypted, this.aad(row.userId))
    } catch {
      return null
    }
  }

  /**
   * A new pending enrolment, replacing any earlier pending one; a user with
   * a confirmed factor must remove it first (409 totp_already_enabled).
   */
  async start (tx: Prisma.TransactionClient, user: { id: string; email: string }): Promise<TotpEnrolment> {
    const existing = await tx.totpFactor.findUnique({ where: { userId: user.id }, select: { confirmedAt: true } })
    if (existing?.confirmedAt) throw new DomainError('totp_already_enabled', 'an authenticator is already set up; remove it before setting up another')
    const secret = randomBytes(SECRET_BYTES)
    const data = { secretEncrypted: seal(this.encryptionKey, secret, this.aad(user.id)), lastUsedStep: 0, createdAt: new Date(this.options.now()) }
    await tx.totpFactor.upsert({ where: { userId: user.id }, create: { userId: user.id, ...data }, update: data })
    const totp = new TOTP({
      issuer: this.options.issuer,
      label: user.email,
      secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
      algorithm: 'SHA1',
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD_SECONDS,
    })
    const otpauthUri = totp.toString()
    const svg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
    return { secret: totp.secret.base32, otpauthUri, qrCode: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` }
  }

  /**
   * Confirms the pending enrolment with its first code: records the code's
   * step (so it cannot be presented again) and activates the factor. False
   * for a wrong code; totp_not_enrolled when nothing (live) is pending.
   */
  async confirm (tx: Prisma.TransactionClient, userId: string, code: string): Promise<boolean> {
    const row = await tx.totpFactor.findUnique({ where: { userId }, select: { id: true, userId: true, secretEncrypted: true, confirmedAt: true, createdAt: true } })
    if (row?.confirmedAt) throw new DomainError('totp_already_enabled', 'the authenticator is already set up')
    if (!row || row.createdAt.getTime() < this.options.now() - PENDING_ENROLMENT_TTL_MS) {
      throw new DomainError('totp_not_enrolled', 'no authenticator set-up is pending (it lasts an hour); start again')
    }
    const secret = this.secretOf(row)
    const step = secret && acceptedStep(secret, code, this.options.now(), 0)
    if (step === null) return false
    const { count } = await tx.totpFactor.updateMany({
      where: { id: row.id, confirmedAt: null },
      data: { confirmedAt: new Date(this.options.now()), lastUsedStep: step },
    })
    return count === 1
  }

  /**
   * Checks a code against the user's confirmed factor and spends its time
   * step: one conditional UPDATE (`last_used_step < step`), so of concurrent
   * presentations of one code exactly one wins, and no code counts twice.
   */
  async verify (tx: Db, userId: string, code: string): Promise<boolean> {
    const row = await tx.totpFactor.findUnique({ where: { userId }, select: { userId: true, secretEncrypted: true, confirmedAt: true, lastUsedStep: true } })
    if (!row?.confirmedAt) return false
    const secret = this.secretOf(row)
    const step = secret && acceptedStep(secret, code, this.options.now(), row.lastUsedStep)
    if (step === null) return false
    const { count } = await tx.totpFactor.updateMany({
      where: { userId, confirmedAt: { not: null }, lastUsedStep: { lt: step } },
      data: { lastUsedStep: step },
    })
    return count === 1
  }

  async isConfirmed (db: Db, userId: string): Promise<boolean> {
    const row = await db.totpFactor.findUnique({ where: { userId }, select: { confirmedAt: true } })
    return row?.confirmedAt != null
  }

  async status (db: Db, userId: string): Promise<TotpStatus | null> {
    const row = await db.totpFactor.findUnique({ where: { userId }, select: { confirmedAt: true, createdAt: true } })
    return row && { confirmed: row.confirmedAt !== null, createdAt: row.createdAt, confirmedAt: row.confirmedAt }
  }

  /** Deletes the user's factor, pending or confirmed; the rows deleted. */
  async remove (tx: Prisma.TransactionClient, userId: string): Promise<number> {
    const { count } = await tx.totpFactor.deleteMany({ where: { userId } })
    return count
  }
}
