import { randomBytes } from 'node:crypto'
import type { SqlPool } from '../db/sql-pool.js'
import { Prisma, type PrismaClient } from '../generated/prisma/client.js'
import type { Role } from '../generated/prisma/enums.js'
import type { SessionSummary } from '../schemas/users.js'
import { recordAuditEvent, type AuditEventInput } from './audit.js'
import { hmacSha256 } from './server-keys.js'

/**
 * Sessions and refresh-token rotation (DESIGN §3.5).
 *
 * A refresh token is 256 random bits, shown once and stored only as an
 * HMAC. Its successor is derived from it with a second server-side key, so a
 * retry inside the grace window gets the very same successor back without the
 * database ever holding a usable token.
 */

export interface SessionLifetimes {
  idleTtlSeconds: number
  absoluteTtlSeconds: number
}

export interface SessionKeys {
  refreshTokenHash: Buffer
  refreshTokenSuccessor: Buffer
}

export interface SessionContext {
  userAgent?: string | undefined
  ip?: string | undefined
}

/**
 * The account as a login verified it: a session starts only while the user
 * still has this role, is enabled and, when given, still has this password
 * hash (bcrypt salts every hash, so any password change changes it).
 */
export interface VerifiedAccount {
  role: Role
  passwordHash: string | null
}

/** What an access token is minted from. */
export interface SessionGrant {
  sessionId: string
  userId: string
  clientId: string
  scope: string
  role: Role
  absoluteExpiresAt: Date
  idleExpiresAt: Date
}

export type RotationFailure =
  | 'unknown' // never issued, or garbage
  | 'client_mismatch' // issued to another client
  | 'expired' // idle or absolute expiry passed
  | 'revoked' // session revoked earlier
  | 'user_disabled'
  | 'reused' // retired token presented outside the grace window: session now revoked

export type RotationResult =
  | { ok: true; grant: SessionGrant; refreshToken: string }
  | { ok: false; reason: RotationFailure; sessionId?: string; userId?: string }

/** Refresh tokens are 32 random bytes, base64url: 43 characters. */
export const REFRESH_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$'
const REFRESH_TOKEN_REGEX = new RegExp(REFRESH_TOKEN_PATTERN)

export class SessionStore {
  private readonly now: () => number

  constructor (
    private readonly db: PrismaClient,
    private readonly sql: SqlPool,
    private readonly keys: SessionKeys,
    private readonly options: {
      graceSeconds: number
      now?: () => number
      /** Told of every revocation, so this instance refuses the sessions' access tokens at once. */
      onRevoked?: (sessionIds: string[]) => void
    }
  ) {
    this.now = options.now ?? Date.now
  }

  hashRefreshToken (token: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.keys.refreshTokenHash, token))
  }

  private successorOf (token: string): string {
    return hmacSha256(this.keys.refreshTokenSuccessor, token).toString('base64url')
  }

  /**
   * Starts a session (one login on one device) and returns its first refresh
   * token, or null when the account no longer is as it was verified: its
   * password changed, its role changed (the lifetimes were chosen for that
   * role) or it was disabled since. The check and the insert are one
   * statement that share-locks the user row, so a password or role change
   * committing at the same time either sees this session (and revokes it) or
   * makes this statement insert nothing; no session opened with a credential
   * outlives its change.
   */
  async start (input: {
    userId: string
    clientId: string
    scope: string
    lifetimes: SessionLifetimes
    context: SessionContext
    verified: VerifiedAccount
    /** Records `login_succeeded` in the same statement (a sign-up records its own event instead). */
    recordLogin?: boolean
  }): Promise<{ grant: SessionGrant; refreshToken: string } | null> {
    const refreshToken = randomBytes(32).toString('base64url')
    const now = new Date(this.now())
    const absoluteExpiresAt = new Date(now.getTime() + input.lifetimes.absoluteTtlSeconds * 1000)
    const idleExpiresAt = new Date(Math.min(now.getTime() + input.lifetimes.idleTtlSeconds * 1000, absoluteExpiresAt.getTime()))
    const { rows } = await this.sql.query<{ id: string }>({
      name: 'start_session',
      text: START_STATEMENT,
      values: [
        input.userId,
        input.verified.role,
        input.verified.passwordHash,
        input.clientId,
        input.scope,
        input.lifetimes.idleTtlSeconds,
        input.context.userAgent?.slice(0, 512) ?? null,
        input.context.ip ?? null,
        now,
        idleExpiresAt,
        absoluteExpiresAt,
        this.hashRefreshToken(refreshToken),
        input.recordLogin ? 'login_succeeded' : null,
      ],
    })
    const session = rows[0]
    if (!session) return null
    return {
      refreshToken,
      grant: {
        sessionId: session.id,
        userId: input.userId,
        clientId: input.clientId,
        scope: input.scope,
        role: input.verified.role,
        absoluteExpiresAt,
        idleExpiresAt,
      },
    }
  }

  /**
   * Exchanges a refresh token for its successor: single use, one successor
   * under any concurrency, the grace window, reuse detection.
   *
   * The happy path is one statement: retiring the presented token is a
   * conditional UPDATE (`retired_at IS NULL`), so of any number of concurrent
   * presentations exactly one row-locks and retires it, and only that one
   * inserts the successor (also guarded by the unique parent_id). The others
   * fall through to `classify`, which sees the committed retirement.
   */
  async rotate (refreshToken: string, clientId: string, context: SessionContext = {}): Promise<RotationResult> {
    if (!REFRESH_TOKEN_REGEX.test(refreshToken)) return { ok: false, reason: 'unknown' }
    const tokenHash = this.hashRefreshToken(refreshToken)
    const successor = this.successorOf(refreshToken)
    const now = new Date(this.now())
    // pg directly, not $queryRaw: this runs on every refresh. Named, so that
    // each connection has Postgres parse and plan it once (planning this
    // statement costs more than running it); Prisma's raw queries are
    // unnamed, and its per-query work comes on top.
    const { rows } = await this.sql.query<RotatedRow>({
      name: 'rotate_refresh_token',
      text: ROTATE_STATEMENT,
      values: [now, tokenHash, clientId, context.ip ?? null, context.userAgent?.slice(0, 512) ?? null, this.hashRefreshToken(successor)],
    })
    const row = rows[0]
    if (row) return { ok: true, refreshToken: successor, grant: toGrant(row) }
    return this.classify(tokenHash, refreshToken, clientId, now, context)
  }

  /**
   * Why a presented token did not rotate, and the answers that depend on it:
   * inside the grace window a retired token gets the family's live token back
   * and revokes nothing; outside it, it revokes the whole session (reuse).
   */
  private async classify (
    tokenHash: Uint8Array<ArrayBuffer>,
    refreshToken: string,
    clientId: string,
    now: Date,
    context: SessionContext
  ): Promise<RotationResult> {
    const rows = await this.db.$queryRaw<PresentedRow[]>`
      SELECT rt.id, rt.retired_at, s.id AS session_id, s.user_id, s.client_id, s.scope, s.revoked_at,
             s.idle_expires_at, s.absolute_expires_at, u.disabled, u.role::text AS role
      FROM refresh_tokens AS rt
      JOIN sessions AS s ON s.id = rt.session_id
      JOIN users AS u ON u.id = s.user_id
      WHERE rt.token_hash = ${tokenHash}`
    const row = rows[0]
    if (!row) return { ok: false, reason: 'unknown' }
    const ids = { sessionId: row.session_id, userId: row.user_id }
    if (row.client_id !== clientId) return { ok: false, reason: 'client_mismatch', ...ids }
    if (row.revoked_at) return { ok: false, reason: 'revoked', ...ids }
    if (row.disabled) return { ok: false, reason: 'user_disabled', ...ids }
    if (row.retired_at === null || row.idle_expires_at <= now || row.absolute_expires_at <= now) {
      // A live token that did not rotate can only be an expired one.
      return { ok: false, reason: 'expired', ...ids }
    }
    if (row.retired_at.getTime() + this.options.graceSeconds * 1000 > now.getTime()) {
      // The successor may itself have rotated since (two tabs): answer with
      // the family's live token, derived again, never a spent one.
      let live = refreshToken
      for (let depth = await this.generationsBelow(row.id); depth > 0; depth--) live = this.successorOf(live)
      // Harmless when it is a lost response or a second tab; a pattern of them is worth seeing.
      await recordAuditEvent(this.db, {
        type: 'refresh_token_replayed',
        userId: row.user_id,
        ip: context.ip,
        details: { sessionId: row.session_id, retiredAt: row.retired_at.toISOString() },
      })
      return { ok: true, refreshToken: live, grant: toGrant(row) }
    }
    await this.revokeForReuse(row.session_id, row.user_id, now, context.ip)
    return { ok: false, reason: 'reused', ...ids }
  }

  /** How many rotations followed a token: the depth of the chain of successors below it. */
  private async generationsBelow (tokenId: string): Promise<number> {
    const rows = await this.db.$queryRaw<{ depth: number }[]>`
      WITH RECURSIVE chain AS (
        SELECT id, 0 AS depth FROM refresh_tokens WHERE id = ${tokenId}::uuid
        UNION ALL
        SELECT child.id, chain.depth + 1 FROM refresh_tokens AS child JOIN chain ON child.parent_id = chain.id
      )
      SELECT max(depth)::int AS depth FROM chain`
    return rows[0]?.depth ?? 0
  }

  /** Rule 4: the whole family dies, once, with an audit event. */
  private async revokeForReuse (sessionId: string, userId: string, now: Date, ip: string | undefined): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const revoked = await revokeSessions(tx, { id: sessionId }, 'refresh_token_reused', now)
      if (revoked.length === 1) {
        // The presenter's address: the thief's or the victim's, worth keeping either way.
        await recordAuditEvent(tx, { type: 'refresh_token_reused', userId, ip, details: { sessionId } })
      }
    })
    this.options.onRevoked?.([sessionId])
  }

  /** The live session a refresh token belongs to (retired or not), for logout and RFC 7009 revocation. */
  async findByRefreshToken (refreshToken: string): Promise<{ sessionId: string; userId: string; clientId: string } | null> {
    if (!REFRESH_TOKEN_REGEX.test(refreshToken)) return null
    const token = await this.db.refreshToken.findUnique({
      where: { tokenHash: this.hashRefreshToken(refreshToken) },
      select: { session: { select: { id: true, userId: true, clientId: true, revokedAt: true } } },
    })
    if (!token || token.session.revokedAt) return null
    return { sessionId: token.session.id, userId: token.session.userId, clientId: token.session.clientId }
  }

  /**
   * The grant of a session that can act now: not revoked, not expired, its
   * user enabled. With `refreshToken`, also that token must be the session's
   * live one (not retired). Used by introspection.
   */
  async liveGrant (by: { refreshToken: string } | { sessionId: string }): Promise<SessionGrant | null> {
    const now = new Date(this.now())
    const sessionSelect = {
      id: true,
      userId: true,
      clientId: true,
      scope: true,
      revokedAt: true,
      idleExpiresAt: true,
      absoluteExpiresAt: true,
      user: { select: { role: true, disabled: true } },
    } as const
    let session
    if ('refreshToken' in by) {
      if (!REFRESH_TOKEN_REGEX.test(by.refreshToken)) return null
      const token = await this.db.refreshToken.findUnique({
        where: { tokenHash: this.hashRefreshToken(by.refreshToken) },
        select: { retiredAt: true, session: { select: sessionSelect } },
      })
      if (!token || token.retiredAt) return null
      session = token.session
    } else {
      session = await this.db.session.findUnique({ where: { id: by.sessionId }, select: sessionSelect })
    }
    if (!session || session.revokedAt || session.user.disabled || session.idleExpiresAt <= now || session.absoluteExpiresAt <= now) {
      return null
    }
    return {
      sessionId: session.id,
      userId: session.userId,
      clientId: session.clientId,
      scope: session.scope,
      role: session.user.role,
      idleExpiresAt: session.idleExpiresAt,
      absoluteExpiresAt: session.absoluteExpiresAt,
    }
  }

  /** Revokes sessions; returns the ids that were live. */
  async revoke (where: SessionsToRevoke, reason: string, db: Prisma.TransactionClient | PrismaClient = this.db): Promise<string[]> {
    const ids = await revokeSessions(db, sessionFilter(where), reason, new Date(this.now()))
    if (ids.length === 0) return ids
    this.options.onRevoked?.(ids)
    return ids
  }

  /**
   * Signs out: this session, the user's other sessions,
   * or all of them; audited in the same transaction. The ids revoked.
   */
  logout (input: { userId: string; sessionId: string; scope: 'current' | 'others' | 'global'; ip?: string | undefined }): Promise<string[]> {
    const { userId, sessionId, scope } = input
    const where = scope === 'current' ? { sessionId } : scope === 'others' ? { userId, exceptSessionId: sessionId } : { userId }
    return this.revokeRecorded(where, 'logout', (revoked) => ({
      type: 'logged_out',
      userId,
      actorId: userId,
      ip: input.ip,
      details: { scope, sessionId, revokedSessions: revoked.length },
    }))
  }

  /**
   * Revokes one session of the user, or that of a refresh token presented to
   * RFC 7009 revocation (by whoever holds it: no actor then); audited with
   * the revocation. False when there was no such live session.
   */
  async revokeOne (input: { sessionId: string; userId: string; actorId: string | null; ip?: string | undefined; via?: 'revocation_endpoint' }): Promise<boolean> {
    const reason = input.via === 'revocation_endpoint' ? 'token_revoked' : 'revoked_by_user'
    const revoked = await this.revokeRecorded({ sessionId: input.sessionId, userId: input.userId }, reason, (ids) =>
      ids.length === 0
        ? null
        : {
            type: 'session_revoked',
            userId: input.userId,
            actorId: input.actorId,
            ip: input.ip,
            details: { sessionId: input.sessionId, ...(input.via ? { via: input.via } : {}) },
          }
    )
    return revoked.length > 0
  }

  /** Revokes sessions and writes the audit event `event` makes of the ids revoked, in one transaction. */
  private async revokeRecorded (
    where: Parameters<SessionStore['revoke']>[0],
    reason: string,
    event: (revoked: string[]) => AuditEventInput | null
  ): Promise<string[]> {
    return this.db.$transaction(async (tx) => {
      const revoked = await this.revoke(where, reason, tx)
      const audit = event(revoked)
      if (audit) await recordAuditEvent(tx, audit)
      return revoked
    })
  }

  /** A user's sessions that can still refresh. */
  async listLive (userId: string): Promise<SessionSummary[]> {
    const now = new Date(this.now())
    return this.db.session.findMany({
      where: { userId, revokedAt: null, idleExpiresAt: { gt: now }, absoluteExpiresAt: { gt: now } },
      orderBy: { createdAt: 'desc' },
      select: {
        id: true,
        clientId: true,
        userAgent: true,
        ip: true,
        createdAt: true,
        lastRefreshedAt: true,
        idleExpiresAt: true,
        absoluteExpiresAt: true,
      },
    })
  }
}

/** One session (of a user), or a user's sessions (but one). */
export type SessionsToRevoke = { sessionId: string; userId?: string } | { userId: string; exceptSessionId?: string }

function sessionFilter (where: SessionsToRevoke): Prisma.SessionWhereInput {
  return 'sessionId' in where
    ? { id: where.sessionId, ...(where.userId ? { userId: where.userId } : {}) }
    : { userId: where.userId, ...(where.exceptSessionId ? { id: { not: where.exceptSessionId } } : {}) }
}

/**
 * Revocation for a process without a SessionStore (the admin:create CLI):
 * the same write; running instances see it at their next revocation sync.
 */
export function sessionRevoker (db: PrismaClient, now: () => number = Date.now): Pick<SessionStore, 'revoke'> {
  return { revoke: (where, reason, tx = db) => revokeSessions(tx, sessionFilter(where), reason, new Date(now())) }
}

/**
 * Marks the live sessions matching `filter` revoked; returns their ids. The
 * one write behind every revocation; telling this instance's revocation list
 * is the caller's part.
 */
async function revokeSessions (
  db: Prisma.TransactionClient | PrismaClient,
  filter: Prisma.SessionWhereInput,
  reason: string,
  now: Date
): Promise<string[]> {
  const revoked = await db.session.updateManyAndReturn({
    where: { ...filter, revokedAt: null },
    data: { revokedAt: now, revokedReason: reason },
    select: { id: true },
  })
  return revoked.map((s) => s.id)
}

/**
 * A session's start in one statement: $1 user id, $2 role and $3 password
 * hash as verified ($3 null: no password involved), $4 client id, $5 scope,
 * $6 idle TTL, $7 user agent, $8 ip, $9 now, $10 idle and $11 absolute
 * expiry, $12 the first refresh token's hash, $13 the audit event to
 * record with it (null: none). FOR SHARE waits for a concurrent change of
 * the user row to commit and then re-checks the conditions against the new
 * row.
 */
const START_STATEMENT = `
  WITH account AS (
    SELECT u.id FROM users AS u
    WHERE u.id = $1 AND u.role = $2::role AND NOT u.disabled
      AND ($3::text IS NULL OR u.password_hash = $3::text)
    FOR SHARE
  ), session AS (
    INSERT INTO sessions (user_id, client_id, scope, idle_ttl_seconds, user_agent, ip, created_at, last_refreshed_at,
                          idle_expires_at, absolute_expires_at)
    SELECT a.id, $4, $5, $6, $7, $8, $9, $9, $10, $11 FROM account AS a
    RETURNING id
  ), first_token AS (
    INSERT INTO refresh_tokens (session_id, token_hash, created_at)
    SELECT s.id, $12, $9 FROM session AS s
  ), audit AS (
    INSERT INTO audit_events (type, user_id, ip, details)
    SELECT $13::text, $1, $8, jsonb_build_object('sessionId', s.id, 'clientId', $4::text)
    FROM session AS s WHERE $13::text IS NOT NULL
  )
  SELECT id FROM session`

/**
 * Rotation in one statement: $1 now, $2 presented token's hash, $3 client id,
 * $4 ip, $5 user agent, $6 successor's hash. The first CTE retires the token
 * only if it is live and its session can refresh; the others hang off it.
 */
const ROTATE_STATEMENT = `
  WITH presented AS (
    UPDATE refresh_tokens AS rt SET retired_at = $1
    FROM sessions AS s JOIN users AS u ON u.id = s.user_id
    WHERE rt.token_hash = $2 AND rt.retired_at IS NULL
      AND s.id = rt.session_id AND s.client_id = $3
      AND s.revoked_at IS NULL AND s.idle_expires_at > $1 AND s.absolute_expires_at > $1
      AND NOT u.disabled
    RETURNING rt.id, rt.session_id, s.idle_ttl_seconds, s.absolute_expires_at, u.role
  ), refreshed AS (
    UPDATE sessions AS s SET last_refreshed_at = $1,
      ip = COALESCE($4::text, s.ip),
      user_agent = COALESCE($5::text, s.user_agent),
      idle_expires_at = LEAST($1::timestamptz + make_interval(secs => p.idle_ttl_seconds), p.absolute_expires_at)
    FROM presented AS p WHERE s.id = p.session_id
    RETURNING s.id, s.user_id, s.client_id, s.scope, s.idle_expires_at, s.absolute_expires_at
  ), successor AS (
    INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at)
    SELECT p.session_id, $6, p.id, $1 FROM presented AS p
    RETURNING id
  )
  SELECT r.id AS session_id, r.user_id, r.client_id, r.scope, r.idle_expires_at, r.absolute_expires_at,
         p.role::text AS role
  FROM refreshed AS r JOIN presented AS p ON p.session_id = r.id CROSS JOIN successor`

interface RotatedRow {
  session_id: string
  user_id: string
  client_id: string
  scope: string
  idle_expires_at: Date
  absolute_expires_at: Date
  role: string
}

interface PresentedRow extends RotatedRow {
  id: string
  retired_at: Date | null
  revoked_at: Date | null
  disabled: boolean
}

function toGrant (row: RotatedRow): SessionGrant {
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    clientId: row.client_id,
    scope: row.scope,
    role: row.role as Role,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
  }
}
