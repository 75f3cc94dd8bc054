import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Prisma } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import { DomainError } from '../../errors.js'
import type { AuditEvent } from './schemas.js'
import type { PublicUser } from '../accounts/schemas.js'
import { foldEmail, PUBLIC_USER_SELECT } from '../accounts/accounts.js'
import { voidUnspentLinks } from '../recovery/link-secrets.js'
import { recordAuditEvent, type AuditEventInput } from '../../shared/audit.js'
import { canonicalUuid, MAX_BIGINT } from '../../shared/formats.js'
import { createdBefore, decodeCursor, encodeCursor, hasExactly, isCreatedCursor, pageOf } from '../../shared/pagination.js'
import type { Page } from '../../shared/pagination-schemas.js'
import type { SessionStore } from '../sessions/sessions.js'

/**
 * What the admin API does (DESIGN §3.8), without HTTP: a user directory with
 * keyset pagination, role and disabled changes that take effect at once, and
 * the audit log. Every change writes an audit event naming the admin.
 */

export interface AuditEventFilter {
  userId?: string | undefined
  type?: string | undefined
  since?: Date | undefined
  until?: Date | undefined
}

function isEventCursor (value: unknown): value is { id: string } {
  if (!hasExactly(value, ['id']) || typeof value.id !== 'string' || !/^[1-9]\d{0,18}$/.test(value.id)) return false
  return BigInt(value.id) <= MAX_BIGINT
}

export class Administration {
  private readonly now: () => number

  constructor (
    private readonly db: PrismaClient,
    private readonly sessions: Pick<SessionStore, 'revoke'>,
    private readonly options: {
      now?: () => number
      /** Told when a user's role or disabled flag changed, so this instance applies it at once. */
      onUserChanged?: (userId: string, state: { role: Role; disabled: boolean; changedAt: Date }) => void
    } = {}
  ) {
    this.now = options.now ?? Date.now
  }

  /**
   * Users, newest first, optionally those whose email contains `q`. Keyset
   * pagination on (created_at, id): a page never repeats or skips a user
   * because others signed up meanwhile.
   */
  async listUsers (input: { q?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Page<PublicUser>> {
    const after = input.cursor ? decodeCursor(input.cursor, isCreatedCursor) : undefined
    const where: Prisma.UserWhereInput = {
      // Prisma's `contains` is a LIKE pattern and does not escape: `_` and `%` in q must match only themselves.
      // Folded as stored addresses are (NFKC, trimmed, lower-cased), so a search finds what sign-up stored.
      ...(input.q ? { email: { contains: foldEmail(input.q).replace(/[\\%_]/g, '\\$&') } } : {}),
      ...(after ? createdBefore(after) : {}),
    }
    const rows = await this.db.user.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: input.limit + 1,
      select: PUBLIC_USER_SELECT,
    })
    return pageOf(rows, input.limit)
  }

  getUser (id: string): Promise<PublicUser | null> {
    return this.db.user.findUnique({ where: { id }, select: PUBLIC_USER_SELECT })
  }

  /**
   * Changes a user's role or disabled flag. Disabling revokes every session
   * of the user in the same transaction. An admin cannot demote or disable
   * themself, so the last admin cannot lock everyone out by mistake.
   */
  async updateUser (input: {
    /** The admin making the change; null for the admin:create CLI (an operator with database access). */
    actorId: string | null
    userId: string
    role?: Role | undefined
    disabled?: boolean | undefined
    ip?: string | undefined
    via?: 'cli'
  }): Promise<PublicUser | null> {
    // Compared in canonical form: the schema lower-cases ids, and this guard must hold for any caller.
    const self = input.actorId !== null && canonicalUuid(input.actorId) === canonicalUuid(input.userId)
    if (self && (input.role === 'user' || input.disabled === true)) {
      throw new DomainError('self_lockout', 'an admin cannot demote or disable themself')
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
      const via = input.via ? { via: input.via } : {}
      if (role !== before.role) {
        // A change of privilege ends every session (OWASP session management:
        // renew the session on a privilege change): a session opened as a user
        // must not refresh into admin tokens, nor keep a user's lifetimes.
        const revoked = await this.sessions.revoke({ userId: input.userId }, 'role_changed', tx)
        await recordAuditEvent(tx, { type: 'role_changed', ...event, details: { from: before.role, to: role, ...via, revokedSessions: revoked.length } })
      }
      if (disabled && !before.disabled) {
        const revoked = await this.sessions.revoke({ userId: input.userId }, 'user_disabled', tx)
        // No link asked for before the disabling (an address change, a reset) works after it.
        const voidedLinks = await voidUnspentLinks(tx, input.userId)
        await recordAuditEvent(tx, { type: 'user_disabled', ...event, details: { revokedSessions: revoked.length, voidedLinks } })
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
  async revokeSessions (input: { actorId: string; userId?: string; sessionId?: string; ip?: string }): Promise<string[]> {
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
        tx
      )
      for (const sessionId of revoked) {
        await recordAuditEvent(tx, { type: 'session_revoked', userId, actorId: input.actorId, ip: input.ip, details: { sessionId } })
      }
      return revoked
    })
  }

  /** Audit events, newest first, filtered; keyset pagination on the event id. */
  async auditEvents (input: AuditEventFilter & { limit: number; cursor?: string | undefined }): Promise<Page<AuditEvent>> {
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
