import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import { DomainError } from '../../errors.js'
import type { AdminUser, AuditEvent } from './schemas.js'
import type { PublicUser } from '../accounts/schemas.js'
import { foldEmail, normalizeEmail, PUBLIC_USER_SELECT } from '../accounts/accounts.js'
import { voidUnspentLinks } from '../recovery/link-secrets.js'
import { AUDIT_EVENT_VIEW_COLUMNS, AUDIT_EVENT_VIEW_JOINS, auditEventView, recordAuditEvent, type AuditEventInput, type AuditEventRow } from '../../shared/audit.js'
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
  /** The user whose address this is now (normalised as at sign-up): their events, from before an address change too. */
  email?: string | undefined
  type?: string | undefined
  since?: Date | undefined
  until?: Date | undefined
}

/** A page of the admin's user list, and how many users the query matches in all. */
export type UserList = Page<AdminUser> & { total: number }

/** What the user list shows of each user besides the public fields: one query for a whole page (`userFacts`). */
interface UserFacts {
  id: string
  lastSignInAt: Date | null
  totp: boolean
  passkeys: number
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
   * because others signed up meanwhile. With each user, when they last
   * signed in and their second factors (one query for the page, not one per
   * user: `userFacts`); with the page, how many users match in all.
   */
  async listUsers (input: { q?: string | undefined; limit: number; cursor?: string | undefined }): Promise<UserList> {
    const after = input.cursor ? decodeCursor(input.cursor, isCreatedCursor) : undefined
    // Prisma's `contains` is a LIKE pattern and does not escape: `_` and `%` in q must match only themselves.
    // Folded as stored addresses are (NFKC, trimmed, lower-cased), so a search finds what sign-up stored.
    const matching: Prisma.UserWhereInput = input.q ? { email: { contains: foldEmail(input.q).replace(/[\\%_]/g, '\\$&') } } : {}
    const listing = async () => {
      const rows = await this.db.user.findMany({
        where: { ...matching, ...(after ? createdBefore(after) : {}) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: input.limit + 1,
        select: PUBLIC_USER_SELECT,
      })
      const page = pageOf(rows, input.limit)
      const facts = new Map((await this.userFacts(page.items.map((user) => user.id))).map((row) => [row.id, row]))
      const items = page.items.map((user) => {
        const fact = facts.get(user.id)
        return { ...user, lastSignInAt: fact?.lastSignInAt ?? null, secondFactors: { totp: fact?.totp ?? false, passkeys: fact?.passkeys ?? 0 } }
      })
      return { items, nextCursor: page.nextCursor }
    }
    const [{ items, nextCursor }, total] = await Promise.all([listing(), this.db.user.count({ where: matching })])
    return { items, nextCursor, total }
  }

  /**
   * For a page of users, in one statement: the newest login_succeeded event
   * of each (the audit log, not the sessions: a session row is deleted
   * SESSION_RETENTION_DAYS after it ends, so a user away for two months
   * would show no sign-in at all, while login_succeeded is kept
   * AUDIT_RETENTION_DAYS, 400 by default; the event is written by the very
   * statement that starts the session, so the two agree while both exist),
   * found by a backward scan of the (user_id, at) index that stops at the
   * first match; whether an authenticator app is on (totp_factors is unique
   * on user_id); how many passkeys (index on user_id). Each probe reads one
   * user's rows through an index, never a whole table.
   */
  private async userFacts (ids: string[]): Promise<UserFacts[]> {
    if (ids.length === 0) return []
    return this.db.$queryRaw<UserFacts[]>`
      SELECT u.id::text AS id,
        (SELECT a.at FROM audit_events a
          WHERE a.user_id = u.id AND a.type = 'login_succeeded'
          ORDER BY a.at DESC LIMIT 1) AS "lastSignInAt",
        EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL) AS totp,
        (SELECT count(*) FROM passkeys p WHERE p.user_id = u.id)::int AS passkeys
      FROM unnest(${ids}::uuid[]) AS u(id)`
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

  /**
   * Audit events, newest first, filtered; keyset pagination on the event id.
   * Each event comes with the current addresses of its user and actor, joined
   * in the same statement.
   */
  async auditEvents (input: AuditEventFilter & { limit: number; cursor?: string | undefined }): Promise<Page<AuditEvent>> {
    const before = input.cursor ? decodeCursor(input.cursor, isEventCursor) : undefined
    // Checked before the query: an address that cannot be one is a 400 (invalid_email), not an empty page.
    const email = input.email === undefined ? undefined : normalizeEmail(input.email)
    const conditions: Prisma.Sql[] = []
    if (input.userId) conditions.push(Prisma.sql`e.user_id = ${input.userId}::uuid`)
    // The address resolves to its user (the unique index on users.email); the user's events are found by id.
    if (email !== undefined) conditions.push(Prisma.sql`e.user_id = (SELECT id FROM users WHERE email = ${email})`)
    if (input.type) conditions.push(Prisma.sql`e.type = ${input.type}`)
    if (input.since) conditions.push(Prisma.sql`e.at >= ${input.since}`)
    if (input.until) conditions.push(Prisma.sql`e.at < ${input.until}`)
    if (before) conditions.push(Prisma.sql`e.id < ${BigInt(before.id)}`)
    const where = conditions.length > 0 ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}` : Prisma.empty
    const rows = await this.db.$queryRaw<AuditEventRow[]>`
      SELECT ${Prisma.raw(AUDIT_EVENT_VIEW_COLUMNS)}
      FROM audit_events e ${Prisma.raw(AUDIT_EVENT_VIEW_JOINS)}
      ${where}
      ORDER BY e.id DESC
      LIMIT ${input.limit + 1}`
    const items: AuditEvent[] = rows.slice(0, input.limit).map(auditEventView)
    const last = items.at(-1)
    return { items, nextCursor: rows.length > input.limit && last ? encodeCursor({ id: last.id }) : null }
  }
}
