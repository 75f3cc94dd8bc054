import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import { DomainError } from '../errors.js'
import { emailProblem, foldEmail, normalizeEmail } from './accounts.js'
import type { AccountTokens } from './account-tokens.js'
import { recordAuditEvent } from './audit.js'
import type { Outbox } from './outbox.js'
import { passwordProblem, type PasswordHasher } from './passwords.js'
import type { SessionStore } from './sessions.js'

/**
 * Account recovery and proof of address (DESIGN §3.11), without HTTP:
 * password reset and email verification by emailed links. Each secret is
 * written in the transaction of the message that carries it
 * (account-tokens.ts, outbox.ts).
 */

export interface RecoveryOptions {
  passwordResetTtlSeconds: number
  emailVerifyTtlSeconds: number
  now: () => number
  /** Told after a transaction that queued mail commits (the local worker sends at once). */
  mailQueued: () => void
  /** Told of work done after its request was answered that failed. */
  onBackgroundError: (error: unknown) => void
  /** Told when a user's address or its verified state changed (cached user records). */
  userChanged: (userId: string) => void
}

/** What a verification link did, for the page that POSTed it. */
export interface VerifiedAddress {
  purpose: 'email_verification' | 'email_change'
  email: string
}

export class Recovery {
  private readonly pending = new Set<Promise<void>>()

  constructor (
    private readonly db: PrismaClient,
    private readonly deps: { tokens: AccountTokens; outbox: Outbox; passwords: PasswordHasher; sessions: Pick<SessionStore, 'revoke'> },
    private readonly options: RecoveryOptions
  ) {}

  /** Waits for the work still running after its request was answered (shutdown, tests). */
  async settled (): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending)
  }

  /**
   * Starts a password reset for an address and returns at once, before
   * anything about the address is known: the answer, and the time it takes,
   * are the same for an unknown address, a disabled account and a real one
   * (no enumeration through the response or its timing). The work goes on
   * after the answer; shutdown waits for it.
   */
  requestPasswordReset (emailInput: string, ip: string | undefined): void {
    this.inBackground(this.sendPasswordReset(foldEmail(emailInput), { ip }))
  }

  /** An admin sends a user a reset link; the admin never sees it. Null when there is no such user. */
  async adminPasswordReset (input: { userId: string; actorId: string; ip?: string | undefined }): Promise<{ email: string } | null> {
    const user = await this.db.user.findUnique({ where: { id: input.userId }, select: { email: true, disabled: true } })
    if (!user) return null
    if (user.disabled) throw new DomainError('user_disabled', 'the user is disabled; enable them before sending a reset link')
    await this.sendPasswordReset(user.email, { ip: input.ip, actorId: input.actorId })
    return { email: user.email }
  }

  private async sendPasswordReset (email: string, by: { ip?: string | undefined; actorId?: string }): Promise<void> {
    if (emailProblem(email)) return
    const user = await this.db.user.findUnique({ where: { email }, select: { id: true, disabled: true } })
    if (!user || user.disabled) return
    await this.db.$transaction(async (tx) => {
      const secret = await this.deps.tokens.issue(tx, { userId: user.id, purpose: 'password_reset', ttlSeconds: this.options.passwordResetTtlSeconds })
      await this.deps.outbox.enqueue(tx, {
        recipient: email,
        template: 'password_reset',
        data: { email, expiresInMinutes: String(Math.round(this.options.passwordResetTtlSeconds / 60)) },
        secret,
      })
      await recordAuditEvent(tx, {
        type: 'password_reset_requested',
        userId: user.id,
        actorId: by.actorId ?? null,
        ip: by.ip,
        details: by.actorId ? { via: 'admin' } : {},
      })
    })
    this.options.mailQueued()
  }

  /**
   * Sets a new password with a reset secret. The password is checked first,
   * so a weak one leaves the link usable; the secret is spent in the
   * transaction that changes the password, revokes every session of the user
   * (their access tokens are refused within a second, §3.5.7) and queues the
   * notice. A disabled account cannot be reset (the secret stays unspent).
   */
  async confirmPasswordReset (input: { token: string; newPassword: string; ip?: string | undefined }): Promise<void> {
    const problem = passwordProblem(input.newPassword)
    if (problem) throw new DomainError('weak_password', problem)
    // A bad secret costs a lookup, not a bcrypt hash.
    await this.deps.tokens.check(this.db, input.token, ['password_reset'])
    const passwordHash = await this.deps.passwords.hash(input.newPassword)
    await this.db.$transaction(async (tx) => {
      const { userId } = await this.deps.tokens.spend(tx, input.token, ['password_reset'])
      const user = await tx.user.findUniqueOrThrow({ where: { id: userId }, select: { email: true, disabled: true, emailVerifiedAt: true } })
      if (user.disabled) throw new DomainError('invalid_link_token', 'this account is disabled')
      // The link reached the address: that proves it too (and is the way in for an unverified account under REQUIRE_EMAIL_VERIFICATION).
      await tx.user.update({ where: { id: userId }, data: { passwordHash, emailVerifiedAt: user.emailVerifiedAt ?? new Date(this.options.now()) } })
      const revoked = await this.deps.sessions.revoke({ userId }, 'password_reset', tx)
      await recordAuditEvent(tx, { type: 'password_reset', userId, actorId: userId, ip: input.ip, details: { revokedSessions: revoked.length } })
      await this.notifyPasswordChanged(tx, user.email)
      return userId
    }).then((userId) => this.options.userChanged(userId))
    this.options.mailQueued()
  }

  /** Queues a verification link to the user's address, in the caller's transaction (sign-up's). */
  readonly queueVerification = async (tx: Prisma.TransactionClient, user: { id: string; email: string }): Promise<void> => {
    const secret = await this.deps.tokens.issue(tx, { userId: user.id, purpose: 'email_verification', ttlSeconds: this.options.emailVerifyTtlSeconds })
    await this.deps.outbox.enqueue(tx, {
      recipient: user.email,
      template: 'email_verification',
      data: { email: user.email, expiresInHours: String(Math.round(this.options.emailVerifyTtlSeconds / 3600)) },
      secret,
    })
  }

  /** A new verification link for a signed-in user; the older one stops working. */
  async resendVerification (userId: string): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId }, select: { id: true, email: true, emailVerifiedAt: true } })
      if (!user) throw new DomainError('invalid_credentials', 'the user no longer exists')
      if (user.emailVerifiedAt) throw new DomainError('email_already_verified', 'this address is already verified')
      await this.queueVerification(tx, user)
    })
    this.options.mailQueued()
  }

  /**
   * Spends the token of a verification link (marks the address verified) or
   * of an address-change link (moves the account to the new address, which
   * that link just proved). A verification link is for the address it was
   * sent to: a change of address deletes the unused ones.
   */
  async verifyEmail (input: { token: string; ip?: string | undefined }): Promise<VerifiedAddress> {
    let result: { userId: string } & VerifiedAddress
    try {
      result = await this.db.$transaction(async (tx) => {
        const spent = await this.deps.tokens.spend(tx, input.token, ['email_verification', 'email_change'])
        const { userId } = spent
        const now = new Date(this.options.now())
        const user = await tx.user.findUniqueOrThrow({ where: { id: userId }, select: { email: true, emailVerifiedAt: true } })
        if (spent.purpose === 'email_change' && spent.newEmail) {
          // Checked again now: another account may have taken the address since the request.
          if (await tx.user.findUnique({ where: { email: spent.newEmail }, select: { id: true } })) throw emailTaken()
          await tx.user.update({ where: { id: userId }, data: { email: spent.newEmail, emailVerifiedAt: now } })
          await tx.accountToken.deleteMany({ where: { userId, purpose: 'email_verification', usedAt: null } })
          await recordAuditEvent(tx, { type: 'email_changed', userId, actorId: userId, ip: input.ip })
          return { userId, purpose: 'email_change' as const, email: spent.newEmail }
        }
        if (!user.emailVerifiedAt) {
          await tx.user.update({ where: { id: userId }, data: { emailVerifiedAt: now } })
          await recordAuditEvent(tx, { type: 'email_verified', userId, actorId: userId, ip: input.ip })
        }
        return { userId, purpose: 'email_verification' as const, email: user.email }
      })
    } catch (error) {
      // Two accounts confirming one new address at once: the unique index decides.
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') throw emailTaken()
      throw error
    }
    this.options.userChanged(result.userId)
    return { purpose: result.purpose, email: result.email }
  }

  /**
   * Asks to move an account to a new address. The password is checked (the
   * caller spends the password budget first); the answer is the same whether
   * or not the new address belongs to another account, and so is the work
   * but for one insert: a secret is issued either way, but only a free
   * address is sent the link.
   * The current address is told at once, so its owner can react to a
   * takeover attempt before the change lands.
   */
  async requestEmailChange (input: { userId: string; newEmail: string; currentPassword: string; ip?: string | undefined }): Promise<void> {
    const newEmail = normalizeEmail(input.newEmail)
    const user = await this.db.user.findUnique({ where: { id: input.userId }, select: { email: true, passwordHash: true } })
    if (!user || !(await this.deps.passwords.verify(input.currentPassword, user.passwordHash))) {
      await recordAuditEvent(this.db, { type: 'email_change_failed', userId: input.userId, actorId: input.userId, ip: input.ip, details: { reason: 'wrong_password' } })
      throw new DomainError('invalid_credentials', 'current password is wrong')
    }
    if (newEmail === user.email) throw new DomainError('invalid_email', 'this is already the address of the account')
    const taken = (await this.db.user.findUnique({ where: { email: newEmail }, select: { id: true } })) !== null
    const hours = String(Math.round(this.options.emailVerifyTtlSeconds / 3600))
    await this.db.$transaction(async (tx) => {
      const secret = await this.deps.tokens.issue(tx, { userId: input.userId, purpose: 'email_change', ttlSeconds: this.options.emailVerifyTtlSeconds, newEmail })
      if (!taken) await this.deps.outbox.enqueue(tx, { recipient: newEmail, template: 'email_change', data: { email: newEmail, expiresInHours: hours }, secret })
      await this.deps.outbox.enqueue(tx, { recipient: user.email, template: 'email_change_requested', data: { email: user.email, newEmail } })
      await recordAuditEvent(tx, { type: 'email_change_requested', userId: input.userId, actorId: input.userId, ip: input.ip })
    })
    this.options.mailQueued()
  }

  /** Queues the "your password was changed" notice, in the caller's transaction (a reset's, a password change's). */
  readonly notifyPasswordChanged = (tx: Prisma.TransactionClient, email: string): Promise<string> =>
    this.deps.outbox.enqueue(tx, { recipient: email, template: 'password_changed', data: { email } })

  private inBackground (work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.options.onBackgroundError(error)).finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
  }
}

function emailTaken (): DomainError {
  return new DomainError('email_taken', 'another account has this address now')
}
