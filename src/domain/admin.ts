import type { PrismaClient } from '../generated/prisma/client.js'
import type { Prisma } from '../generated/prisma/client.js'
import type { Role } from '../generated/prisma/enums.js'
import { foldEmail, PUBLIC_USER_SELECT, type PublicUser } from './accounts.js'
import { recordAuditEvent, type AuditEventInput } from './audit.js'
import { canonicalUuid, isCanonicalUuid, MAX_BIGINT, parseDateTime } from './formats.js'
import type { SessionStore } from './sessions.js'

/**
 * What the admin API does (DESIGN §3.8), without HTTP: a user directory with
 * keyset pagination, role and disabled changes that take effect at once, and
 * the audit log. Every change writes an audit event naming the admin.
 */

export class AdminError extends Error {
  constructor(
    readonly code: 'invalid_cursor' | 'self_lockout',
    message: string,
  ) {
    super(message)
    this.name = 'AdminError'
  }
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface AuditEventView {
  id: string
  type: string
  userId: string | null
  actorId: string | null
  ip: string | null
  at: Date
  details: Prisma.JsonValue
}

export interface AuditEventFilter {
  userId?: string | undefined
  type?: string | undefined
  since?: Date | undefined
  until?: Date | undefined
}

function encodeCursor(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function decodeCursor<T>(cursor: string, isValid: (value: unknown) => value is T): T {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (isValid(value)) return value
  } catch {
    // fall through
  }
  throw new AdminError('invalid_cursor', 'the cursor is not one this API returned')
}

/**
 * A cursor is checked as a whole against what encodeCursor writes: exactly
 * its fields, each in the form this API issues (a canonical lower-case id,
 * an instant as toISOString writes it within the storable range, an event
 * id inside bigint). Anything else is not one of ours, however it decodes.
 */
function hasExactly(value: unknown, keys: string[]): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const own = Object.keys(value)
  return own.length === keys.length && keys.every((key) => own.includes(key))
}

function isUserCursor(value: unknown): value is { at: string; id: string } {
  if (!hasExactly(value, ['at', 'id']) || typeof value.at !== 'string' || typeof value.id !== 'string') return false
  const at = parseDateTime(value.at)
  return at !== null && at.toISOString() === value.at && isCanonicalUuid(value.id)
}

function isEventCursor(value: unknown): value is { id: string } {
  if (!hasExactly(value, ['id']) || typeof value.id !== 'string' || !/^[1-9]\d{0,18}$/.test(value.id)) return false
  return BigInt(value.id) <= MAX_BIGINT
}

export class Administration {
  private readonly now: () => number

  constructor(
    private readonly db: PrismaClient,
    private readonly sessions: SessionStore,
    private readonly options: {
      now?: () => number
      /** Told when a user's role or disabled flag changed, so this instance applies it at once. */
      onUserChanged?: (userId: string, state: { role: Role; disabled: boolean; changedAt: Date }) => void
    } = {},
  ) {
    this.now = options.now ?? Date.now
  }

  /**
   * Users, newest first, optionally those whose email contains `q`. Keyset
   * pagination on (created_at, id): a page never repeats or skips a user
   * because others signed up meanwhile.
   */
  async listUsers(input: { q?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Page<PublicUser>> {
    const after = input.cursor ? decodeCursor(input.cursor, isUserCursor) : undefined
    const where: Prisma.UserWhereInput = {
      // Prisma's `contains` is a LIKE pattern and does not escape: `_` and `%` in q must match only themselves.
      // Folded as stored addresses are (NFKC, trimmed, lower-cased), so a search finds what sign-up stored.
      ...(input.q ? { email: { contains: foldEmail(input.q).replace(/[\\%_]/g, '\\$&') } } : {}),
      ...(after
        ? {
            OR: [
              { createdAt: { lt: new Date(after.at) } },
              { createdAt: new Date(after.at), id: { lt: after.id } },
            ],
          }
        : {}),
    }
    const rows = await this.db.user.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: input.limit + 1,
      select: PUBLIC_USER_SELECT,
    })
    const items = rows.slice(0, input.limit)
    const last = items.at(-1)
    return {
      items,
      nextCursor: rows.length > input.limit && last ? encodeCursor({ at: last.createdAt.toISOString(), id: last.id }) : null,
    }
  }

  getUser(id: string): Promise<PublicUser | null> {
    return this.db.user.findUnique({ where: { id }, select: PUBLIC_USER_SELECT })
  }

  /**
   * Changes a user's role or disabled flag. Disabling revokes every session
   * of the user in the same transaction. An admin cannot demote or disable
   * themself, so the last admin cannot lock everyone out by mistake.
   */
  async updateUser(input: {
    actorId: string
    userId: string
    role?: Role | undefined
    disabled?: boolean | undefined
    ip?: string | undefined
  }): Promise<PublicUser | null> {
    // Compared in canonical form: the schema lower-cases ids, and this guard must hold for any caller.
    if (canonicalUuid(input.actorId) === canonicalUuid(input.userId) && (input.role === 'user' || input.disabled === true)) {
      throw new AdminError('self_lockout', 'an admin cannot demote or disable themself')
    }
    const result = await this.db.$transaction(async (tx) => {
      const before = await tx.user.findUnique({ where: { id: input.userId }, select: { role: true, disabled: true } })
      if (!before) return null
      const role = input.role ?? before.role
      const disabled = input.disabled ?? before.disabled
      if (role === before.role && disabled === before.disabled) {
        return { user: await tx.user.findUniqueOrThrow({ where: { id: input.userId }, select: PUBLIC_USER_SELECT }), changedAt: null }
      }
      const changedAt = new Date(this.now())
      const user = await tx.user.update({
        where: { id: input.userId },
        data: { role, disabled, authChangedAt: changedAt },
        select: PUBLIC_USER_SELECT,
      })
      const event = { userId: input.userId, actorId: input.actorId, ip: input.ip } satisfies Partial<AuditEventInput>
      if (role !== before.role) {
        // A change of privilege ends every session (OWASP session management:
        // renew the session on a privilege change): a session opened as a user
        // must not refresh into admin tokens, nor keep a user's lifetimes.
        const revoked = await this.sessions.revoke({ userId: input.userId }, 'role_changed', tx)
        await recordAuditEvent(tx, { type: 'role_changed', ...event, details: { from: before.role, to: role, revokedSessions: revoked.length } })
      }
      if (disabled && !before.disabled) {
        const revoked = await this.sessions.revoke({ userId: input.userId }, 'user_disabled', tx)
        await recordAuditEvent(tx, { type: 'user_disabled', ...event, details: { revokedSessions: revoked.length } })
      }
      if (!disabled && before.disabled) await recordAuditEvent(tx, { type: 'user_enabled', ...event })
      return { user, changedAt }
    })
    if (result?.changedAt) {
      this.options.onUserChanged?.(input.userId, { role: result.user.role, disabled: result.user.disabled, changedAt: result.changedAt })
    }
    return result?.user ?? null
  }

  /** Revokes one session of a user, or all of them; the ids revoked. */
  async revokeSessions(input: { actorId: string; userId?: string; sessionId?: string; ip?: string }): Promise<string[]> {
    return this.db.$transaction(async (tx) => {
      let userId = input.userId
      if (input.sessionId) {
        const session = await tx.session.findUnique({ where: { id: input.sessionId }, select: { userId: true } })
        if (!session || (userId && session.userId !== userId)) return []
        userId = session.userId
      }
      if (!userId) return []
      const revoked = await this.sessions.revoke(
        input.sessionId ? { sessionId: input.sessionId, userId } : { userId },
        'revoked_by_admin',
        tx,
      )
      for (const sessionId of revoked) {
        await recordAuditEvent(tx, { type: 'session_revoked', userId, actorId: input.actorId, ip: input.ip, details: { sessionId } })
      }
      return revoked
    })
  }

  /** Audit events, newest first, filtered; keyset pagination on the event id. */
  async auditEvents(input: AuditEventFilter & { limit: number; cursor?: string | undefined }): Promise<Page<AuditEventView>> {
    const before = input.cursor ? decodeCursor(input.cursor, isEventCursor) : undefined
    const rows = await this.db.auditEvent.findMany({
      where: {
        ...(input.userId ? { userId: input.userId } : {}),
        ...(input.type ? { type: input.type } : {}),
        ...(input.since || input.until
          ? { at: { ...(input.since ? { gte: input.since } : {}), ...(input.until ? { lt: input.until } : {}) } }
          : {}),
        ...(before ? { id: { lt: BigInt(before.id) } } : {}),
      },
      orderBy: { id: 'desc' },
      take: input.limit + 1,
    })
    const items = rows.slice(0, input.limit).map((row) => ({ ...row, id: row.id.toString() }))
    const last = items.at(-1)
    return { items, nextCursor: rows.length > input.limit && last ? encodeCursor({ id: last.id }) : null }
  }
}
