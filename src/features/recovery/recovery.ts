import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { emailProblem, foldEmail, normalizeEmail } from '../accounts/accounts.js'
import { voidUnspentLinks, type LinkSecrets } from './link-secrets.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { describeCredential } from '../email/credential-notices.js'
import type { Outbox } from '../email/outbox.js'
import { passwordProblem, type PasswordHasher } from '../accounts/passwords.js'
import type { SessionStore } from '../sessions/sessions.js'

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
    private readonly deps: { tokens: LinkSecrets; outbox: Outbox; passwords: PasswordHasher; sessions: Pick<SessionStore, 'revoke'> },
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
    // Started on a later turn of the event loop, once the answer is on its
    // way: no part of the lookup (on the embedded database, in this very
    // process) runs before the answer leaves, whatever the address.
    const email = foldEmail(emailInput)
    this.inBackground(new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.sendPasswordReset(email, { ip })))
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
    const queued = await this.db.$transaction(async (tx) => {
      // Found by address under a share lock: an address change committing
      // meanwhile either ran before (then the old address finds no one) or
      // waits for this one (then it voids the link mailed here).
      const [user] = await tx.$queryRaw<{ id: string; disabled: boolean }[]>`SELECT id, disabled FROM users WHERE email = ${email} FOR SHARE`
      if (!user || user.disabled) return false
      // Asking for a reset is what the address-change notice tells the
      // owner to do: it cancels a pending change at once (an admin's reset
      // voids every unspent link).
      if (by.actorId) await voidUnspentLinks(tx, user.id)
      else await tx.accountToken.deleteMany({ where: { userId: user.id, purpose: 'email_change', usedAt: null } })
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
      return true
    })
    if (queued) this.options.mailQueued()
  }

  /**
   * Sets a new password with a reset secret. The password is checked first,
   * so a weak one leaves the link usable; the secret is spent in the
   * transaction that changes the password, revokes every session of the user
   * (their access tokens are refused within a second, §3.5.7), voids every
   * other unspent link and queues the notice. A disabled account cannot be
   * reset (the secret stays unspent).
   *
   * An account whose address was unverified until this reset was open to
   * anyone who typed the address at sign-up (account pre-hijacking,
   * Sudhodanan and Paverd, USENIX Security 2022): the reset hands it to the
   * address's owner bare, with every passkey, authenticator, recovery code
   * and API key made before it removed. A verified account keeps its
   * factors (a reset must not bypass the second one); the notice lists the
   * passkeys and API keys added since the address was last confirmed, with
   * a link that removes them.
   */
  async confirmPasswordReset (input: { token: string; newPassword: string; ip?: string | undefined }): Promise<void> {
    const problem = passwordProblem(input.newPassword)
    if (problem) throw new DomainError('weak_password', problem)
    // A bad secret costs a lookup, not a bcrypt hash.
    await this.deps.tokens.check(this.db, input.token, ['password_reset'])
    const passwordHash = await this.deps.passwords.hash(input.newPassword)
    await this.db.$transaction(async (tx) => {
      await lockUserOf(tx, await this.deps.tokens.userOf(tx, input.token))
      const { userId } = await this.deps.tokens.spend(tx, input.token, ['password_reset'])
      const user = await tx.user.findUniqueOrThrow({ where: { id: userId }, select: { email: true, disabled: true, emailVerifiedAt: true } })
      if (user.disabled) throw new DomainError('invalid_link_token', 'this account is disabled')
      const now = new Date(this.options.now())
      // The link reached the address: that proves it too (and is the way in for an unverified account under REQUIRE_EMAIL_VERIFICATION).
      await tx.user.update({ where: { id: userId }, data: { passwordHash, emailVerifiedAt: user.emailVerifiedAt ?? now } })
      const revoked = await this.deps.sessions.revoke({ userId }, 'password_reset', tx)
      const voidedLinks = await voidUnspentLinks(tx, userId)
      const reclaimed = user.emailVerifiedAt === null ? await removeCredentials(tx, userId, now) : undefined
      await recordAuditEvent(tx, {
        type: 'password_reset',
        userId,
        actorId: userId,
        ip: input.ip,
        details: { revokedSessions: revoked.length, voidedLinks, ...(reclaimed ? { unverifiedAccountReclaimed: reclaimed } : {}) },
      })
      await this.queuePasswordChangedNotice(tx, { userId, email: user.email, since: user.emailVerifiedAt })
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
        // The user first: a password reset or change, or a disabling,
        // committing meanwhile is either seen here or waits, and then finds
        // no link to void.
        const user = await lockUserOf(tx, await this.deps.tokens.userOf(tx, input.token))
        const spent = await this.deps.tokens.spend(tx, input.token, ['email_verification', 'email_change'])
        const { userId } = spent
        const now = new Date(this.options.now())
        if (!user) throw new DomainError('invalid_link_token', 'this account no longer exists')
        if (user.disabled) throw new DomainError('invalid_link_token', 'this account is disabled')
        if (spent.purpose === 'email_change' && spent.newEmail) {
          // Asked with the password the account had then: a change of password since (the owner securing the account) voids it.
          if (!spent.passwordHashMac || !this.deps.tokens.samePassword(spent.passwordHashMac, user.password_hash)) {
            throw new DomainError('invalid_link_token', 'the account\'s password changed since this change was asked for; ask again')
          }
          // Checked again now: another account may have taken the address since the request.
          if (await tx.user.findUnique({ where: { email: spent.newEmail }, select: { id: true } })) throw emailTaken()
          await tx.user.update({ where: { id: userId }, data: { email: spent.newEmail, emailVerifiedAt: now } })
          // Every link mailed to the old address (a reset, a verification) dies with it.
          await voidUnspentLinks(tx, userId)
          await recordAuditEvent(tx, { type: 'email_changed', userId, actorId: userId, ip: input.ip })
          return { userId, purpose: 'email_change' as const, email: spent.newEmail }
        }
        if (!user.email_verified_at) {
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
      const secret = await this.deps.tokens.issue(tx, {
        userId: input.userId,
        purpose: 'email_change',
        ttlSeconds: this.options.emailVerifyTtlSeconds,
        newEmail,
        passwordHashMac: this.deps.tokens.passwordMac(user.passwordHash),
      })
      if (!taken) await this.deps.outbox.enqueue(tx, { recipient: newEmail, template: 'email_change', data: { email: newEmail, expiresInHours: hours }, secret })
      await this.deps.outbox.enqueue(tx, { recipient: user.email, template: 'email_change_requested', data: { email: user.email, newEmail } })
      await recordAuditEvent(tx, { type: 'email_change_requested', userId: input.userId, actorId: input.userId, ip: input.ip })
    })
    this.options.mailQueued()
  }

  /**
   * What a password change does beyond the new hash, in its transaction:
   * voids every unspent link of the user (a pending address change above
   * all) and queues the "your password was changed" notice.
   */
  readonly passwordChanged = async (tx: Prisma.TransactionClient, user: { userId: string; email: string }): Promise<void> => {
    await voidUnspentLinks(tx, user.userId)
    const { emailVerifiedAt } = await tx.user.findUniqueOrThrow({ where: { id: user.userId }, select: { emailVerifiedAt: true } })
    await this.queuePasswordChangedNotice(tx, { ...user, since: emailVerifiedAt })
  }

  /**
   * The "your password was changed" notice. When passkeys or API keys were
   * added since the address was last confirmed (`since`; null: never, and
   * then a reset removed them all), it lists them with a one-click link that
   * removes them: an intruder who knew the old password may have left one,
   * and each signs in without the password. The anchor is the address's
   * proof because nobody can move it without the mailbox.
   */
  private async queuePasswordChangedNotice (tx: Prisma.TransactionClient, user: { userId: string; email: string; since: Date | null }): Promise<void> {
    const added = user.since === null ? { passkeys: [], apiKeys: [] } : await credentialsAddedSince(tx, user.userId, user.since)
    if (added.passkeys.length === 0 && added.apiKeys.length === 0) {
      await this.deps.outbox.enqueue(tx, { recipient: user.email, template: 'password_changed', data: { email: user.email } })
      return
    }
    const secret = await this.deps.tokens.issue(tx, {
      userId: user.userId,
      purpose: 'credential_removal',
      ttlSeconds: this.options.emailVerifyTtlSeconds,
      details: { passkeyIds: added.passkeys.map((p) => p.id), apiKeyIds: added.apiKeys.map((k) => k.id) },
    })
    const lines = [
      ...added.passkeys.map((p) => `- ${describeCredential('passkey', p.name)}, added ${p.createdAt.toISOString()}`),
      ...added.apiKeys.map((k) => `- ${describeCredential('api_key', k.name)} (${k.prefix}…), added ${k.createdAt.toISOString()}`),
    ]
    await this.deps.outbox.enqueue(tx, {
      recipient: user.email,
      template: 'password_changed_review',
      data: { email: user.email, credentials: lines.join('\n'), expiresInHours: String(Math.round(this.options.emailVerifyTtlSeconds / 3600)) },
      secret,
    })
  }

  /**
   * Spends a credential-removal link: deletes the passkeys (ending the
   * sessions they opened) and revokes the API keys its notice listed, those
   * still there. Audited. What was removed.
   */
  async removeListedCredentials (input: { token: string; ip?: string | undefined }): Promise<{ passkeys: number; apiKeys: number }> {
    const removed = await this.db.$transaction(async (tx) => {
      const spent = await this.deps.tokens.spend(tx, input.token, ['credential_removal'])
      const listed = listedCredentials(spent.details)
      const now = new Date(this.options.now())
      const passkeys = await tx.passkey.deleteMany({ where: { userId: spent.userId, id: { in: listed.passkeyIds } } })
      const sessions = await this.deps.sessions.revoke({ userId: spent.userId, passkeyIds: listed.passkeyIds }, 'passkey_removed', tx)
      const apiKeys = await tx.apiKey.updateMany({ where: { userId: spent.userId, id: { in: listed.apiKeyIds }, revokedAt: null }, data: { revokedAt: now } })
      const counts = { passkeys: passkeys.count, apiKeys: apiKeys.count }
      await recordAuditEvent(tx, { type: 'credentials_removed_by_link', userId: spent.userId, actorId: spent.userId, ip: input.ip, details: { ...counts, revokedSessions: sessions.length } })
      return { userId: spent.userId, counts }
    })
    this.options.userChanged(removed.userId)
    return removed.counts
  }

  private inBackground (work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.options.onBackgroundError(error)).finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
  }
}

/**
 * Locks a user's row for the rest of the caller's transaction, and reads
 * what a link's confirmation checks. Every transaction that changes a user
 * and their link secrets takes the user first (a password change, a
 * disabling update it before voiding links), so two of them never wait on
 * each other in opposite orders.
 */
async function lockUserOf (tx: Prisma.TransactionClient, userId: string | null) {
  if (userId === null) return undefined
  const [user] = await tx.$queryRaw<{ email: string; disabled: boolean; password_hash: string; email_verified_at: Date | null }[]>`
    SELECT email, disabled, password_hash, email_verified_at FROM users WHERE id = ${userId}::uuid FOR UPDATE`
  return user
}

/**
 * Every way into an account but its password, removed in the caller's
 * transaction: passkeys, the authenticator and its recovery codes, API keys
 * (revoked), pending second steps and WebAuthn challenges. Links and
 * sessions are the caller's. The counts, for the audit event.
 */
async function removeCredentials (tx: Prisma.TransactionClient, userId: string, now: Date): Promise<Record<string, number>> {
  const where = { userId }
  return {
    passkeys: (await tx.passkey.deleteMany({ where })).count,
    totp: (await tx.totpFactor.deleteMany({ where })).count,
    recoveryCodes: (await tx.recoveryCode.deleteMany({ where })).count,
    apiKeys: (await tx.apiKey.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } })).count,
    mfaTokens: (await tx.mfaToken.deleteMany({ where })).count,
    webauthnChallenges: (await tx.webauthnChallenge.deleteMany({ where })).count,
  }
}

/** The user's passkeys and live API keys created at or after `since`, oldest first. */
async function credentialsAddedSince (tx: Prisma.TransactionClient, userId: string, since: Date) {
  const passkeys = await tx.passkey.findMany({ where: { userId, createdAt: { gte: since } }, select: { id: true, name: true, createdAt: true }, orderBy: { createdAt: 'asc' } })
  const apiKeys = await tx.apiKey.findMany({
    where: { userId, createdAt: { gte: since }, revokedAt: null },
    select: { id: true, name: true, prefix: true, createdAt: true },
    orderBy: { createdAt: 'asc' },
  })
  return { passkeys, apiKeys }
}

/** The ids a credential-removal link's details name (written by queuePasswordChangedNotice). */
function listedCredentials (details: unknown): { passkeyIds: string[]; apiKeyIds: string[] } {
  const ids = (value: unknown) => (Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [])
  const { passkeyIds, apiKeyIds } = (details ?? {}) as { passkeyIds?: unknown; apiKeyIds?: unknown }
  return { passkeyIds: ids(passkeyIds), apiKeyIds: ids(apiKeyIds) }
}

function emailTaken (): DomainError {
  return new DomainError('email_taken', 'another account has this address now')
}
