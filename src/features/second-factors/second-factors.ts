import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import type { PublicUser } from '../accounts/schemas.js'
import { PUBLIC_USER_SELECT, type VerifiedLogin } from '../accounts/accounts.js'
import { recordAuditEvent } from '../../shared/audit.js'
import type { Transport } from '../tokens/clients.js'
import { voidUnspentLinks } from '../recovery/link-secrets.js'
import type { CredentialNotices } from '../email/credential-notices.js'
import type { ClaimedMfaToken, LoginChallenges } from './login-challenges.js'
import type { VerifiedAssertion } from '../passkeys/passkeys.js'
import type { Outbox } from '../email/outbox.js'
import type { PasswordHasher } from '../accounts/passwords.js'
import { normalizeRecoveryCode, type BackupCodes } from './backup-codes.js'
import { normalizeOtp, type TotpEnrolment, type TotpFactors, type TotpStatus } from './totp-factors.js'

/**
 * Second factors (DESIGN §3.12) without HTTP: TOTP enrolment, recovery
 * codes, the second step of a login, removal, an admin's reset, and the
 * checks the step-up grant calls (hasSecondFactor, verifyOneTimeCode).
 */

/** A one-time code as a login's second step or a step-up presents it. */
export type OneTimeCode = { otp: string } | { recoveryCode: string }

/** What the second step of a login accepts, as mfa_required names it. */
export type LoginFactor = 'otp' | 'recovery_code' | 'passkey'

export interface OneTimeCodeContext {
  ip?: string | undefined
  /** What the code was for, in the audit log (login, step_up, removal...). */
  purpose: string
  /** Spends one attempt of the user's one-time-code budget; throws when it is spent. */
  spendAttempt: (userId: string) => Promise<void>
}

/**
 * One kind of second factor, as an admin's reset and `hasSecondFactor` see
 * it. TOTP (with its recovery codes) is one; passkeys join the list.
 */
export interface SecondFactorStore {
  /** Its key in a reset's report. */
  name: string
  /** Whether the user has a usable factor of this kind. */
  has(db: PrismaClient | Prisma.TransactionClient, userId: string): Promise<boolean>
  /** Deletes every factor of this kind of the user; how many. */
  remove(tx: Prisma.TransactionClient, userId: string): Promise<number>
  /** What the second step of a password login accepts for a factor of this kind (TOTP's codes are the class's own). */
  loginFactor?: LoginFactor
}

export interface SecondFactorsOptions {
  now: () => number
  /** Told after a transaction that queued mail commits. */
  mailQueued: () => void
  /** Told of every one-time code checked at a login's second step or a step-up, and whether it was accepted: the metrics. */
  secondFactorChecked?: (factor: 'totp' | 'recovery_code', accepted: boolean) => void
}

export interface FactorList {
  totp: TotpStatus | null
  recoveryCodes: { remaining: number }
}

/** What a login's first step leaves for the second: how to open the session once the code checks out. */
export interface PendingLogin {
  clientId: string
  transport: Transport
  scope: string
  ip?: string | undefined
  /** The PKCE challenge of an authorization challenge's flow (its code is bound to it). */
  codeChallenge?: string | undefined
}

export class SecondFactors {
  /** Every kind of second factor a user may hold; an admin's reset empties them all. */
  readonly stores: SecondFactorStore[]

  constructor (
    private readonly db: PrismaClient,
    private readonly deps: { totp: TotpFactors; backupCodes: BackupCodes; loginChallenges: LoginChallenges; outbox: Outbox; passwords: PasswordHasher; notices: CredentialNotices },
    private readonly options: SecondFactorsOptions
  ) {
    const { totp, backupCodes } = deps
    this.stores = [
      { name: 'totp', has: (db, userId) => totp.isConfirmed(db, userId), remove: (tx, userId) => totp.remove(tx, userId) },
      // Recovery codes stand in for a factor; alone they do not make one.
      { name: 'recovery_codes', has: async () => false, remove: (tx, userId) => backupCodes.remove(tx, userId) },
    ]
  }

  /** Adds a kind of factor (passkeys) to those hasSecondFactor counts and a reset removes. */
  addStore (store: SecondFactorStore): void {
    this.stores.push(store)
  }

  /** Whether the user has any usable second factor (the step-up grant's first question). */
  async hasSecondFactor (userId: string): Promise<boolean> {
    for (const store of this.stores) if (await store.has(this.db, userId)) return true
    return false
  }

  /**
   * What the second step of a login accepts for the user: a TOTP code (and
   * a recovery code while any is left) with a confirmed authenticator, a
   * passkey assertion with a passkey; none without a factor.
   */
  async loginFactors (userId: string): Promise<LoginFactor[]> {
    const factors: LoginFactor[] = []
    if (await this.deps.totp.isConfirmed(this.db, userId)) {
      factors.push('otp')
      if ((await this.deps.backupCodes.remaining(this.db, userId)) > 0) factors.push('recovery_code')
    }
    for (const store of this.stores) {
      if (store.loginFactor !== undefined && (await store.has(this.db, userId))) factors.push(store.loginFactor)
    }
    return factors
  }

  /** The user a login's pending second step is for (a passkey step's options), if its mfa_token could be claimed now; invalid_grant otherwise. */
  pendingLoginUser (mfaToken: string): Promise<{ userId: string }> {
    return this.deps.loginChallenges.peek(this.db, mfaToken)
  }

  /** A pending login's user and flow, if `mfaToken` could be spent now by this client and transport; invalid_grant otherwise. */
  pendingLogin (mfaToken: string, by: { clientId: string; transport: Transport }): Promise<{ userId: string; codeChallenge: string | null }> {
    return this.deps.loginChallenges.peek(this.db, mfaToken, by)
  }

  /**
   * Checks a one-time code of the user and spends it (its time step, or the
   * recovery code), exactly as a login's second step does: budgeted,
   * failures audited. For the step-up grant.
   */
  async verifyOneTimeCode (userId: string, code: OneTimeCode, context: OneTimeCodeContext): Promise<boolean> {
    await context.spendAttempt(userId)
    return this.checkCode(this.db, userId, code, context)
  }

  /** Checks and spends a code in `db` (a caller's transaction), auditing the outcome; no budget. */
  private async checkCode (db: PrismaClient | Prisma.TransactionClient, userId: string, code: OneTimeCode, context: Omit<OneTimeCodeContext, 'spendAttempt'>): Promise<boolean> {
    const kind = 'otp' in code ? 'otp' : 'recovery_code'
    const accepted = 'otp' in code
      ? await this.deps.totp.verify(db, userId, code.otp)
      : (await this.deps.totp.isConfirmed(db, userId)) && (await this.deps.backupCodes.spend(db, userId, code.recoveryCode))
    this.options.secondFactorChecked?.(kind === 'otp' ? 'totp' : kind, accepted)
    if (!accepted) {
      await recordAuditEvent(db, { type: 'second_factor_failed', userId, ip: context.ip, details: { factor: kind, purpose: context.purpose } })
    } else if (kind === 'recovery_code') {
      const remaining = await this.deps.backupCodes.remaining(db, userId)
      await recordAuditEvent(db, { type: 'recovery_code_used', userId, actorId: userId, ip: context.ip, details: { purpose: context.purpose, remaining } })
    }
    return accepted
  }

  /**
   * The fork in a password login: a user with a second factor gets
   * mfa_required with a token for the second step (audited
   * login_mfa_required) instead of a session. Returns when there is none.
   */
  async requireSecondStep (login: VerifiedLogin, pending: PendingLogin): Promise<void> {
    const factors = await this.loginFactors(login.user.id)
    if (factors.length === 0) return
    const mfaToken = await this.db.$transaction(async (tx) => {
      const token = await this.deps.loginChallenges.issue(tx, { userId: login.user.id, clientId: pending.clientId, transport: pending.transport, scope: pending.scope, verified: login.verified, codeChallenge: pending.codeChallenge })
      await recordAuditEvent(tx, { type: 'login_mfa_required', userId: login.user.id, ip: pending.ip, details: { clientId: pending.clientId, factors } })
      return token
    })
    throw new DomainError(
      'mfa_required',
      'this account has a second factor: send mfa_token with an otp, a recovery_code, or a passkey assertion (credential) over options from POST /auth/mfa/passkey-options',
      undefined,
      { mfa_token: mfaToken, factors }
    )
  }

  /**
   * The second step of a login: spends the mfa_token (single use under any
   * concurrency) and the code in one transaction. A wrong code leaves the
   * token usable, counted, until its last allowed failure; the budget's
   * refusal (429) leaves it untouched. Answers the login to open the session
   * with, as the first step verified it, and the scope then granted;
   * invalid_grant for everything else.
   */
  async completeLogin (
    mfaToken: string,
    code: OneTimeCode,
    context: OneTimeCodeContext & { clientId: string; transport: Transport }
  ): Promise<{ login: VerifiedLogin; scope: string }> {
    type Outcome = { failed: string } | { claimed: ClaimedMfaToken; user: (PublicUser & { passwordHash: string }) | null }
    const outcome = await this.db.$transaction(async (tx): Promise<Outcome> => {
      const claimed = await this.deps.loginChallenges.claim(tx, mfaToken, context)
      await context.spendAttempt(claimed.userId)
      if (!(await this.checkCode(tx, claimed.userId, code, { ip: context.ip, purpose: 'login' }))) {
        const usable = await this.deps.loginChallenges.recordFailure(tx, claimed)
        return { failed: usable ? 'the code is wrong or was already used' : 'the code is wrong; too many wrong codes for this mfa_token: sign in again' }
      }
      const user = await tx.user.findUnique({ where: { id: claimed.userId }, select: { ...PUBLIC_USER_SELECT, passwordHash: true } })
      return { claimed, user }
    }, { maxWait: 10_000, timeout: 10_000 })
    if (!('claimed' in outcome)) throw new DomainError('invalid_grant', outcome.failed)
    return { login: await this.loginAsVerified(outcome.claimed, outcome.user, context.ip), scope: outcome.claimed.scope }
  }

  /**
   * The second step of a login with a passkey: `verify` checks the
   * assertion for the mfa_token's user (spending its challenge, which makes
   * a failed assertion unrepeatable) before the token is claimed; a failure
   * counts against the token as a wrong code does. Then as completeLogin.
   */
  async completeLoginWithPasskey (
    mfaToken: string,
    verify: (userId: string) => Promise<VerifiedAssertion>,
    context: Omit<OneTimeCodeContext, 'purpose'> & { clientId: string; transport: Transport }
  ): Promise<{ login: VerifiedLogin; scope: string; assertion: VerifiedAssertion }> {
    const { userId } = await this.deps.loginChallenges.peek(this.db, mfaToken, context)
    await context.spendAttempt(userId)
    let assertion: VerifiedAssertion
    try {
      assertion = await verify(userId)
    } catch (error) {
      if (!(error instanceof DomainError) || error.code !== 'invalid_grant') throw error
      const usable = await this.db.$transaction(async (tx) => this.deps.loginChallenges.recordFailure(tx, await this.deps.loginChallenges.claim(tx, mfaToken, context)))
      throw new DomainError('invalid_grant', usable ? error.message : `${error.message}; too many failures for this mfa_token: sign in again`)
    }
    const { claimed, user } = await this.db.$transaction(async (tx) => {
      const claimed = await this.deps.loginChallenges.claim(tx, mfaToken, context)
      const user = await tx.user.findUnique({ where: { id: claimed.userId }, select: { ...PUBLIC_USER_SELECT, passwordHash: true } })
      return { claimed, user }
    })
    return { login: await this.loginAsVerified(claimed, user, context.ip), scope: claimed.scope, assertion }
  }

  /** The login a claimed token's second step opens, if the account is still as its first step verified it; invalid_grant (audited) otherwise. */
  private async loginAsVerified (claimed: ClaimedMfaToken, user: (PublicUser & { passwordHash: string }) | null, ip: string | undefined): Promise<VerifiedLogin> {
    if (!user || user.disabled || !this.deps.loginChallenges.stillVerified(claimed, { role: user.role, passwordHash: user.passwordHash })) {
      await recordAuditEvent(this.db, { type: 'login_failed', userId: claimed.userId, ip, details: { reason: 'account_changed_during_login' } })
      throw new DomainError('invalid_grant', 'the account changed since the password was checked; sign in again')
    }
    const { passwordHash, ...publicUser } = user
    // The role and password hash as the first step checked them: startSession opens the session only if they still hold.
    return { user: publicUser, verified: { role: claimed.role, passwordHash } }
  }

  /** Starts (or restarts) the user's TOTP enrolment. */
  async startTotpEnrolment (user: { id: string; email: string }, ip?: string): Promise<TotpEnrolment> {
    return this.db.$transaction(async (tx) => {
      const enrolment = await this.deps.totp.start(tx, user)
      await recordAuditEvent(tx, { type: 'totp_enrolment_started', userId: user.id, actorId: user.id, ip })
      return enrolment
    })
  }

  /**
   * Confirms the pending enrolment with a code from the app: the factor is
   * on, and a new set of recovery codes (replacing any old one) is returned,
   * to be shown this once. A wrong code: invalid_otp, audited.
   */
  async confirmTotp (userId: string, code: string, context: OneTimeCodeContext): Promise<string[]> {
    const otp = normalizeOtp(code)
    if (otp === null) throw new DomainError('invalid_otp', 'the code must be the 6 digits the app shows')
    await context.spendAttempt(userId)
    const codes = await this.db.$transaction(async (tx) => {
      if (!(await this.deps.totp.confirm(tx, userId, otp))) return null
      const codes = await this.deps.backupCodes.replace(tx, userId)
      await recordAuditEvent(tx, { type: 'totp_enabled', userId, actorId: userId, ip: context.ip })
      await this.deps.notices.added(tx, { userId, kind: 'totp' })
      return codes
    })
    if (codes === null) {
      await recordAuditEvent(this.db, { type: 'second_factor_failed', userId, ip: context.ip, details: { factor: 'otp', purpose: 'enrolment' } })
      throw new DomainError('invalid_otp', 'the code is wrong; check the device\'s clock and try the current code')
    }
    this.deps.notices.committed()
    return codes
  }

  /** A new set of recovery codes for a user with a confirmed factor; the old set stops working. */
  async regenerateRecoveryCodes (userId: string, ip?: string): Promise<string[]> {
    return this.db.$transaction(async (tx) => {
      if (!(await this.deps.totp.isConfirmed(tx, userId))) throw new DomainError('totp_not_enrolled', 'recovery codes need an authenticator set up first')
      const codes = await this.deps.backupCodes.replace(tx, userId)
      await recordAuditEvent(tx, { type: 'recovery_codes_regenerated', userId, actorId: userId, ip })
      return codes
    })
  }

  async listFactors (userId: string): Promise<FactorList> {
    const totp = await this.deps.totp.status(this.db, userId)
    return { totp, recoveryCodes: { remaining: totp?.confirmed ? await this.deps.backupCodes.remaining(this.db, userId) : 0 } }
  }

  /**
   * Removes the user's TOTP factor and its recovery codes, proven by a
   * current code or the password (the caller spends the matching budget
   * first). Nothing else is revoked. A wrong proof: invalid_credentials,
   * audited.
   */
  async removeTotp (userId: string, proof: { otp: string } | { password: string }, context: { ip?: string | undefined }): Promise<void> {
    if (!(await this.deps.totp.isConfirmed(this.db, userId))) throw new DomainError('totp_not_enrolled', 'no authenticator is set up')
    const refuse = async (): Promise<never> => {
      await recordAuditEvent(this.db, { type: 'totp_removal_failed', userId, actorId: userId, ip: context.ip, details: { proof: 'otp' in proof ? 'otp' : 'password' } })
      throw new DomainError('invalid_credentials', 'otp' in proof ? 'the code is wrong or was already used' : 'the password is wrong')
    }
    if ('password' in proof) {
      const user = await this.db.user.findUnique({ where: { id: userId }, select: { passwordHash: true } })
      if (!user || !(await this.deps.passwords.verify(proof.password, user.passwordHash))) return refuse()
    }
    const removed = await this.db.$transaction(async (tx) => {
      if ('otp' in proof) {
        const otp = normalizeOtp(proof.otp)
        if (otp === null || !(await this.deps.totp.verify(tx, userId, otp))) return null
      }
      const totp = await this.deps.totp.remove(tx, userId)
      const recoveryCodes = await this.deps.backupCodes.remove(tx, userId)
      await recordAuditEvent(tx, { type: 'totp_removed', userId, actorId: userId, ip: context.ip, details: { proof: 'otp' in proof ? 'otp' : 'password', recoveryCodes } })
      return totp
    })
    if (removed === null) return refuse()
  }

  /**
   * An admin removes every second factor of a user (a lost device), audited
   * with the actor; the user is told by email in the same transaction. The
   * rows removed, by kind.
   */
  async adminReset (input: { userId: string; actorId: string; ip?: string | undefined }): Promise<Record<string, number> | null> {
    const removed = await this.db.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: input.userId }, select: { email: true } })
      if (!user) return null
      const removed: Record<string, number> = {}
      for (const store of this.stores) removed[store.name] = await store.remove(tx, input.userId)
      await tx.mfaToken.deleteMany({ where: { userId: input.userId } })
      // An admin's reset also ends every pending link of the user (an address change asked by whoever lost them the device).
      await voidUnspentLinks(tx, input.userId)
      await recordAuditEvent(tx, { type: 'second_factors_reset', userId: input.userId, actorId: input.actorId, ip: input.ip, details: { removed } })
      await this.deps.outbox.enqueue(tx, { recipient: user.email, template: 'second_factors_reset', data: { email: user.email } })
      return removed
    })
    if (removed) this.options.mailQueued()
    return removed
  }
}

/** The code a token request or step-up names: exactly one of otp and recovery_code, well formed; else invalid_request. */
export function oneTimeCodeOf (params: { otp?: string | undefined; recovery_code?: string | undefined }): OneTimeCode {
  if ((params.otp === undefined) === (params.recovery_code === undefined)) {
    throw new DomainError('invalid_request', 'send exactly one of otp and recovery_code')
  }
  if (params.otp !== undefined) {
    const otp = normalizeOtp(params.otp)
    if (otp === null) throw new DomainError('invalid_request', 'otp must be the 6 digits the authenticator app shows')
    return { otp }
  }
  const code = normalizeRecoveryCode(params.recovery_code!)
  if (code === null) throw new DomainError('invalid_request', 'recovery_code is not in the form of a recovery code (XXXX-XXXX-XXXX)')
  return { recoveryCode: code }
}
