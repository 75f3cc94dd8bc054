import { LRUCache } from 'lru-cache'
import type { PrismaClient, User } from '../generated/prisma/client.js'
import { Prisma } from '../generated/prisma/client.js'
import { recordAuditEvent } from './audit.js'
import { passwordProblem, type PasswordHasher } from './passwords.js'
import type { SessionStore } from './sessions.js'

/**
 * One spelling per address: NFKC folds compatibility forms (fullwidth
 * letters, ligatures) into their plain letters before lower-casing, so
 * "Ａlice@example.com" cannot register beside "alice@example.com".
 */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase()
}

export class AccountError extends Error {
  constructor(
    readonly code: 'email_taken' | 'weak_password' | 'invalid_credentials',
    message: string,
  ) {
    super(message)
    this.name = 'AccountError'
  }
}

export type PublicUser = Pick<User, 'id' | 'email' | 'role' | 'disabled' | 'createdAt'>

export const PUBLIC_USER_SELECT = { id: true, email: true, role: true, disabled: true, createdAt: true } as const

/**
 * Public user records for the hot path (GET /users/me on every page load):
 * short-lived and dropped as soon as this instance learns of a change, so an
 * authenticated read costs no database round trip.
 */
const USER_CACHE_TTL_MS = 10_000
const USER_CACHE_SIZE = 50_000

export class Accounts {
  private readonly userCache = new LRUCache<string, PublicUser>({ max: USER_CACHE_SIZE, ttl: USER_CACHE_TTL_MS })

  constructor(
    private readonly db: PrismaClient,
    private readonly passwords: PasswordHasher,
    private readonly sessions: SessionStore,
  ) {}

  /** Drops a user's cached record; called when their role or disabled flag changes. */
  forgetUser(userId: string): void {
    this.userCache.delete(userId)
  }

  async signUp(emailInput: string, password: string, ip?: string): Promise<PublicUser> {
    const problem = passwordProblem(password)
    if (problem) throw new AccountError('weak_password', problem)
    const email = normalizeEmail(emailInput)
    const passwordHash = await this.passwords.hash(password)
    try {
      return await this.db.$transaction(async (tx) => {
        const user = await tx.user.create({ data: { email, passwordHash }, select: PUBLIC_USER_SELECT })
        await recordAuditEvent(tx, { type: 'user_signed_up', userId: user.id, ip })
        return user
      })
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        throw new AccountError('email_taken', 'an account with this email already exists')
      }
      throw error
    }
  }

  /**
   * Checks a password login. Unknown email, wrong password and disabled
   * account all cost one bcrypt compare and give the same null.
   */
  async verifyLogin(emailInput: string, password: string, ip?: string): Promise<PublicUser | null> {
    const email = normalizeEmail(emailInput)
    const user = await this.db.user.findUnique({ where: { email }, select: { ...PUBLIC_USER_SELECT, passwordHash: true } })
    const matches = await this.passwords.verify(password, user?.passwordHash)
    if (!user || !matches || user.disabled) {
      const reason = !user ? 'unknown_email' : !matches ? 'wrong_password' : 'user_disabled'
      await recordAuditEvent(this.db, { type: 'login_failed', userId: user?.id, ip, details: { reason } })
      return null
    }
    const { passwordHash: _hash, ...publicUser } = user
    return publicUser
  }

  async findPublic(userId: string): Promise<PublicUser | null> {
    const cached = this.userCache.get(userId)
    if (cached) return cached
    const user = await this.db.user.findUnique({ where: { id: userId }, select: PUBLIC_USER_SELECT })
    if (user) this.userCache.set(userId, user)
    return user
  }

  /** Changes the password and revokes every other session of the user (§3.3). */
  async changePassword(input: {
    userId: string
    currentPassword: string
    newPassword: string
    currentSessionId: string
    ip?: string
  }): Promise<string[]> {
    const user = await this.db.user.findUnique({ where: { id: input.userId }, select: { passwordHash: true } })
    if (!user || !(await this.passwords.verify(input.currentPassword, user.passwordHash))) {
      throw new AccountError('invalid_credentials', 'current password is wrong')
    }
    const problem = passwordProblem(input.newPassword)
    if (problem) throw new AccountError('weak_password', problem)
    const passwordHash = await this.passwords.hash(input.newPassword)
    return this.db.$transaction(async (tx) => {
      await tx.user.update({ where: { id: input.userId }, data: { passwordHash } })
      const revoked = await this.sessions.revoke(
        { userId: input.userId, exceptSessionId: input.currentSessionId },
        'password_changed',
        tx,
      )
      await recordAuditEvent(tx, {
        type: 'password_changed',
        userId: input.userId,
        actorId: input.userId,
        ip: input.ip,
        details: { revokedSessions: revoked.length },
      })
      return revoked
    })
  }
}
