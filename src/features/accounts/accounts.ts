import { LRUCache } from 'lru-cache'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { Prisma } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import type { PublicUser } from './schemas.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { AMR } from '../../shared/authentication-methods.js'
import type { Role } from '../../generated/prisma/enums.js'
import { passwordProblem, type PasswordHasher } from './passwords.js'
import type { SessionContext, SessionGrant, SessionLifetimes, SessionStore, VerifiedAccount } from '../sessions/sessions.js'

/**
 * One spelling per address: NFKC folds compatibility forms (fullwidth
 * letters, ligatures) into their plain letters before lower-casing, so
 * "Ａlice@example.com" cannot register beside "alice@example.com". Folding
 * only; normalizeEmail also checks the result.
 */
export function foldEmail (email: string): string {
  return email.normalize('NFKC').trim().toLowerCase()
}

/**
 * Characters no address may hold, refused rather than stripped: controls
 * (Cc), format characters (Cf: zero-width spaces and joiners, bidi marks and
 * overrides, U+FEFF, soft hyphen), every other default-ignorable code point
 * (U+3164 Hangul filler…), surrogates, private-use and unassigned code
 * points, and any space or separator inside the address. Stripping them
 * would store an address the user did not type and make one invisible
 * spelling a second key to an account; refusing keeps each account's
 * address exactly what it shows (Unicode TR #36 on deleting code points,
 * UTS #39's identifier profile, and PRECIS IdentifierClass, RFC 8264 §4.2,
 * which disallows these classes).
 */
const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Z}\p{Default_Ignorable_Code_Point}]/u
/** RFC 5322 atext, and UTF-8 beyond ASCII (RFC 6531 §3.3); dot-atom: dots only between atoms. */
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~\u{80}-\u{10FFFF}-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~\u{80}-\u{10FFFF}-]+)*$/u
/** A host name label (letters, digits, inner hyphens) or its internationalised (U-label) form. */
const DOMAIN_LABEL = /^[a-z0-9\u{80}-\u{10FFFF}](?:[a-z0-9\u{80}-\u{10FFFF}-]*[a-z0-9\u{80}-\u{10FFFF}])?$/u
/** RFC 5321 §4.5.3.1.1 (local part) and §4.5.3.1.3 (a 256-octet path less its angle brackets). */
const MAX_LOCAL_OCTETS = 64
const MAX_ADDRESS_OCTETS = 254
const MAX_LABEL_OCTETS = 63

/** Why a folded address is not one this service accepts, or null. */
export function emailProblem (email: string): string | null {
  if (INVISIBLE_OR_CONTROL.test(email)) return 'the email contains an invisible, control or space character'
  const octets = Buffer.byteLength(email, 'utf8')
  if (octets > MAX_ADDRESS_OCTETS) return `the email is longer than ${MAX_ADDRESS_OCTETS} octets once normalised`
  const parts = email.split('@')
  if (parts.length !== 2) return 'the email must contain exactly one @ once normalised'
  const [local, domain] = parts as [string, string]
  if (Buffer.byteLength(local, 'utf8') > MAX_LOCAL_OCTETS) return `the part before @ is longer than ${MAX_LOCAL_OCTETS} octets once normalised`
  if (!LOCAL_PART.test(local)) return 'the part before @ is not a valid local part'
  const labels = domain.split('.')
  const valid = labels.length >= 2 && labels.every((label) => DOMAIN_LABEL.test(label) && Buffer.byteLength(label, 'utf8') <= MAX_LABEL_OCTETS)
  if (!valid || labels.at(-1)!.length < 2 || /^\d+$/.test(labels.at(-1)!)) return 'the part after @ is not a domain name'
  return null
}

/**
 * The one form of an address that is stored, looked up and rate-limited:
 * folded first, then checked, so that what is checked is what is stored.
 * Throws invalid_email for anything else.
 */
export function normalizeEmail (email: string): string {
  const folded = foldEmail(email)
  const problem = emailProblem(folded)
  if (problem) throw new DomainError('invalid_email', problem)
  return folded
}

export const PUBLIC_USER_SELECT = { id: true, email: true, role: true, disabled: true, emailVerifiedAt: true, createdAt: true } as const satisfies Record<keyof PublicUser, true>

/** A user whose password was just checked (or set), and the account state it was checked against. */
export interface VerifiedLogin {
  user: PublicUser
  verified: VerifiedAccount
}

/** The session a login opens: its client and scope, where from, and the lifetimes for the user's role. */
export interface SessionRequest {
  clientId: string
  scope: string
  lifetimesFor: (role: Role) => SessionLifetimes
  context: SessionContext
}

/**
 * Public user records for the hot path (GET /users/me on every page load):
 * short-lived and dropped as soon as this instance learns of a change, so an
 * authenticated read costs no database round trip.
 */
const USER_CACHE_TTL_MS = 10_000
const USER_CACHE_SIZE = 50_000

export class Accounts {
  private readonly userCache = new LRUCache<string, PublicUser>({ max: USER_CACHE_SIZE, ttl: USER_CACHE_TTL_MS })

  constructor (
    private readonly db: PrismaClient,
    private readonly passwords: PasswordHasher,
    private readonly sessions: SessionStore,
    private readonly options: {
      /** The password grant refuses accounts whose address is unverified (REQUIRE_EMAIL_VERIFICATION). */
      requireEmailVerification?: boolean
    } = {}
  ) {}

  /** Drops a user's cached record; called when their role or disabled flag changes. */
  forgetUser (userId: string): void {
    this.userCache.delete(userId)
  }

  /**
   * Creates an account. `withinTransaction` runs in the transaction that
   * creates the user (the verification email's secret and message), so the
   * account and its mail exist together or not at all.
   */
  async signUp (
    emailInput: string,
    password: string,
    ip?: string,
    withinTransaction?: (tx: Prisma.TransactionClient, user: PublicUser) => Promise<void>
  ): Promise<VerifiedLogin> {
    const problem = passwordProblem(password)
    if (problem) throw new DomainError('weak_password', problem)
    const email = normalizeEmail(emailInput)
    const passwordHash = await this.passwords.hash(password)
    try {
      return await this.db.$transaction(async (tx) => {
        const user = await tx.user.create({ data: { email, passwordHash }, select: PUBLIC_USER_SELECT })
        await recordAuditEvent(tx, { type: 'user_signed_up', userId: user.id, ip })
        await withinTransaction?.(tx, user)
        return { user, verified: { role: user.role, passwordHash } }
      })
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        throw new DomainError('email_taken', 'an account with this email already exists')
      }
      throw error
    }
  }

  /**
   * Checks a password login. Unknown email, wrong password and disabled
   * account all cost one bcrypt compare and give the same null.
   */
  async verifyLogin (emailInput: string, password: string, ip?: string): Promise<VerifiedLogin | null> {
    // An address sign-up would refuse belongs to no account: the same null as an unknown one, after the same compare.
    const email = foldEmail(emailInput)
    const user = emailProblem(email)
      ? null
      : await this.db.user.findUnique({ where: { email }, select: { ...PUBLIC_USER_SELECT, passwordHash: true } })
    const matches = await this.passwords.verify(password, user?.passwordHash)
    if (!user || !matches || user.disabled) {
      const reason = !user ? 'unknown_email' : !matches ? 'wrong_password' : 'user_disabled'
      await recordAuditEvent(this.db, { type: 'login_failed', userId: user?.id, ip, details: { reason } })
      return null
    }
    const { passwordHash, ...publicUser } = user
    return { user: publicUser, verified: { role: user.role, passwordHash } }
  }

  /**
   * The checks of a password login before anything opens: the password
   * (verifyLogin: null for a wrong one, an unknown address or a disabled
   * account, after the same bcrypt compare), then, where the platform
   * requires it, a confirmed address (email_not_verified).
   */
  async checkPasswordLogin (emailInput: string, password: string, ip: string | undefined): Promise<VerifiedLogin | null> {
    const login = await this.verifyLogin(emailInput, password, ip)
    if (!login) return null
    // Told only to whoever knows the password, so it reveals nothing about the address.
    if (this.options.requireEmailVerification && login.user.emailVerifiedAt === null) {
      await recordAuditEvent(this.db, { type: 'login_failed', userId: login.user.id, ip, details: { reason: 'email_not_verified' } })
      throw new DomainError('email_not_verified', 'confirm your email address first: open the link we sent, or reset your password')
    }
    return login
  }

  /**
   * A password login (RFC 6749 §4.3): checks the password, then opens the
   * session only if the account is still as it was checked (SessionStore.start).
   * A login that loses a race with a password change, a role change or a
   * disabling answers like a wrong password and is audited as such.
   */
  async passwordLogin (
    emailInput: string,
    password: string,
    session: SessionRequest,
    /** Runs once the password and the account check out, before the session opens: the second-factor fork throws mfa_required there. */
    beforeSession?: (login: VerifiedLogin) => Promise<void>
  ): Promise<{ user: PublicUser; grant: SessionGrant; refreshToken: string } | null> {
    const login = await this.checkPasswordLogin(emailInput, password, session.context.ip)
    if (!login) return null
    await beforeSession?.(login)
    const started = await this.startSession(login, session, { recordLogin: true })
    return started && { user: login.user, ...started }
  }

  /**
   * Opens a session for a verified login, or null (audited) when the account
   * changed since it was verified. `recordLogin` writes login_succeeded with it;
   * `amr` is what the login proved (a password, unless told otherwise).
   */
  async startSession (
    login: VerifiedLogin,
    session: SessionRequest,
    options: { recordLogin?: boolean; amr?: string[]; passkeyId?: string | undefined } = {}
  ): Promise<{ grant: SessionGrant; refreshToken: string } | null> {
    const started = await this.sessions.start({
      recordLogin: options.recordLogin ?? false,
      userId: login.user.id,
      clientId: session.clientId,
      scope: session.scope,
      lifetimes: session.lifetimesFor(login.verified.role),
      context: session.context,
      verified: login.verified,
      amr: options.amr ?? [AMR.password],
      passkeyId: options.passkeyId,
    })
    if (!started) {
      await recordAuditEvent(this.db, {
        type: 'login_failed',
        userId: login.user.id,
        ip: session.context.ip,
        details: { reason: 'account_changed_during_login' },
      })
    }
    return started
  }

  /**
   * Checks the password of a signed-in user again (a step-up). A wrong one,
   * or a disabled account, is false and audited as step_up_failed.
   */
  async verifyPassword (userId: string, password: string, context: { ip?: string | undefined; sessionId: string }): Promise<boolean> {
    const user = await this.db.user.findUnique({ where: { id: userId }, select: { passwordHash: true, disabled: true } })
    const matches = await this.passwords.verify(password, user?.passwordHash)
    if (user && matches && !user.disabled) return true
    await recordAuditEvent(this.db, {
      type: 'step_up_failed',
      userId,
      actorId: userId,
      ip: context.ip,
      details: { reason: !user || user.disabled ? 'user_disabled' : 'wrong_password', method: AMR.password, sessionId: context.sessionId },
    })
    return false
  }

  /** The user from the cache findPublic fills, if there; undefined means "ask findPublic", not "no such user". */
  cachedPublic (userId: string): PublicUser | undefined {
    return this.userCache.get(userId)
  }

  async findPublic (userId: string): Promise<PublicUser | null> {
    const cached = this.cachedPublic(userId)
    if (cached) return cached
    const user = await this.db.user.findUnique({ where: { id: userId }, select: PUBLIC_USER_SELECT })
    if (user) this.userCache.set(userId, user)
    return user
  }

  /**
   * Changes the password and revokes every other session of the user (§3.3).
   * Every refusal is audited (a stolen access token guessing the password
   * shows in the log); the update applies only to the hash that was checked,
   * so of two concurrent changes with the same old password one wins.
   */
  async changePassword (input: {
    userId: string
    currentPassword: string
    newPassword: string
    currentSessionId: string
    ip?: string
    /** Runs in the transaction of the change: voiding the user's pending links, the "your password was changed" notice. */
    withinChange?: (tx: Prisma.TransactionClient, user: { userId: string; email: string }) => Promise<void>
  }): Promise<string[]> {
    const refuse = async (code: 'invalid_credentials' | 'weak_password', message: string): Promise<never> => {
      await recordAuditEvent(this.db, {
        type: 'password_change_failed',
        userId: input.userId,
        actorId: input.userId,
        ip: input.ip,
        details: { reason: code === 'invalid_credentials' ? 'wrong_password' : code, sessionId: input.currentSessionId },
      })
      throw new DomainError(code, message)
    }
    const user = await this.db.user.findUnique({ where: { id: input.userId }, select: { email: true, passwordHash: true } })
    if (!user || !(await this.passwords.verify(input.currentPassword, user.passwordHash))) {
      return refuse('invalid_credentials', 'current password is wrong')
    }
    const problem = passwordProblem(input.newPassword)
    if (problem) return refuse('weak_password', problem)
    const passwordHash = await this.passwords.hash(input.newPassword)
    const revoked = await this.db.$transaction(async (tx) => {
      const { count } = await tx.user.updateMany({ where: { id: input.userId, passwordHash: user.passwordHash }, data: { passwordHash } })
      if (count === 0) return null
      const revoked = await this.sessions.revoke(
        { userId: input.userId, exceptSessionId: input.currentSessionId },
        'password_changed',
        tx
      )
      await recordAuditEvent(tx, {
        type: 'password_changed',
        userId: input.userId,
        actorId: input.userId,
        ip: input.ip,
        details: { revokedSessions: revoked.length },
      })
      await input.withinChange?.(tx, { userId: input.userId, email: user.email })
      return revoked
    })
    return revoked ?? refuse('invalid_credentials', 'the password changed meanwhile')
  }
}
