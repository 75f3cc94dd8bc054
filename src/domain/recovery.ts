import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { DomainError } from '../errors.js'
import { emailProblem, foldEmail } from './accounts.js'
import type { AccountTokens } from './account-tokens.js'
import { recordAuditEvent } from './audit.js'
import type { Outbox } from './outbox.js'
import { passwordProblem, type PasswordHasher } from './passwords.js'
import type { SessionStore } from './sessions.js'

/**
 * Account recovery (DESIGN §3.11), without HTTP: password reset by email.
 * Each secret is written in the transaction of the message that carries it
 * (accounts-tokens.ts, outbox.ts).
 */

export interface RecoveryOptions {
  passwordResetTtlSeconds: number
  now: () => number
  /** Told after a transaction that queued mail commits (the local worker sends at once). */
  mailQueued: () => void
  /** Told of work done after its request was answered that failed. */
  onBackgroundError: (error: unknown) => void
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
      const user = await tx.user.findUniqueOrThrow({ where: { id: userId }, select: { email: true, disabled: true } })
      if (user.disabled) throw new DomainError('invalid_link_token', 'this account is disabled')
      await tx.user.update({ where: { id: userId }, data: { passwordHash } })
      const revoked = await this.deps.sessions.revoke({ userId }, 'password_reset', tx)
      await recordAuditEvent(tx, { type: 'password_reset', userId, actorId: userId, ip: input.ip, details: { revokedSessions: revoked.length } })
      await this.notifyPasswordChanged(tx, user.email)
    })
    this.options.mailQueued()
  }

  /** Queues the "your password was changed" notice, in the caller's transaction. */
  notifyPasswordChanged (tx: Prisma.TransactionClient, email: string): Promise<string> {
    return this.deps.outbox.enqueue(tx, { recipient: email, template: 'password_changed', data: { email } })
  }

  private inBackground (work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.options.onBackgroundError(error)).finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
  }
}
