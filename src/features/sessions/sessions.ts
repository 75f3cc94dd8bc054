import { randomUUID } from 'node:crypto'
import type { SqlPool } from '../../db/sql-pool.js'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import type { SessionSummary } from '../accounts/schemas.js'
import { recordAuditEvent, type AuditEventInput } from '../../shared/audit.js'
import type { Authentication } from '../../shared/authentication-methods.js'
import { RefreshTokenCodec, type RefreshToken, type RefreshTokenKeys } from './refresh-token-codec.js'

/**
 * Sessions and refresh-token rotation (DESIGN §3.5).
 *
 * A session is one row, whatever the number of its rotations: it holds the
 * generation and keyed hash of its live refresh token and when its last few
 * generations were retired. A token names its session and generation under a
 * MAC (features/sessions/refresh-token-codec.ts), so a forgery is refused without a database
 * read, an older generation is recognised as a retired token of the session
 * however old, and a successor is derived from its parent, which lets a retry
 * inside the grace window get the very same successor back without the
 * database ever holding a usable token.
 */

export interface SessionLifetimes {
  idleTtlSeconds: number
  absoluteTtlSeconds: number
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
  /** How and when the session's user authenticated (RFC 8176 amr, auth_time). */
  amr: string[]
  authTime: Date
}

/** An authorization code as its exchange spent it, with its user as they are now (null columns: gone). */
export interface CodeStartRow {
  id: string
  client_id: string
  user_id: string
  redirect_uri: string
  code_challenge: string
  scope: string
  nonce: string | null
  browser_session_id: string | null
  password_hash_mac: Uint8Array | null
  passkey_id: string | null
  amr: string[] | null
  auth_time: Date
  expires_at: Date
  role: string | null
  password_hash: string | null
  email: string | null
  email_verified_at: Date | null
  created_at: Date | null
  session_id: string | null
  idle_expires_at: Date | null
  absolute_expires_at: Date | null
}

export interface CodeStart {
  code: CodeStartRow
  started: { grant: SessionGrant; refreshToken: string } | null
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

/**
 * How many retirement times a session keeps: a token this many generations
 * behind the live one is past the grace window for certain unless the session
 * rotated that often within the window, and is then treated as reused (the
 * safe side).
 */
export const RECENT_RETIREMENTS = 8

export class SessionStore {
  private readonly now: () => number
  private readonly tokens: RefreshTokenCodec

  constructor (
    private readonly db: PrismaClient,
    private readonly sql: SqlPool,
    keys: RefreshTokenKeys,
    private readonly options: {
      graceSeconds: number
      now?: () => number
      /** Told of every revocation, so this instance refuses the sessions' access tokens at once. */
      onRevoked?: (sessionIds: string[]) => void
      /** Told how each refresh (a rotation that is not a step-up's) ended: the metrics. */
      onRefresh?: (result: 'success' | RotationFailure) => void
      /** Told when reuse detection revokes a session: the metrics. */
      onReuseDetected?: () => void
    }
  ) {
    this.now = options.now ?? Date.now
    this.tokens = new RefreshTokenCodec(keys)
  }

  /** The session and generation a refresh token names, when it is one of ours; null for anything else. */
  readRefreshToken (token: string): { sessionId: string; generation: number } | null {
    const read = this.tokens.read(token)
    return read && { sessionId: read.sessionId, generation: read.generation }
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
    /** What the login proved (RFC 8176 methods); its time is the session's start. */
    amr: string[]
    /** The passkey the login proved, if any: deleting it ends the session. */
    passkeyId?: string | undefined
    /** Records `login_succeeded` in the same statement (a sign-up records its own event instead). */
    recordLogin?: boolean
  }): Promise<{ grant: SessionGrant; refreshToken: string } | null> {
    const sessionId = randomUUID()
    const refreshToken = this.tokens.first(sessionId).token
    const now = new Date(this.now())
    const absoluteExpiresAt = new Date(now.getTime() + input.lifetimes.absoluteTtlSeconds * 1000)
    const idleExpiresAt = new Date(Math.min(now.getTime() + input.lifetimes.idleTtlSeconds * 1000, absoluteExpiresAt.getTime()))
    const { rows } = await this.sql.query<{ id: string }>({
      name: 'start_session',
      text: START_STATEMENT,
      values: [
        sessionId,
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
        this.tokens.hash(refreshToken),
        input.recordLogin ? 'login_succeeded' : null,
        input.amr,
        input.passkeyId ?? null,
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
        amr: input.amr,
        authTime: now,
      },
    }
  }

  /**
   * Spends an authorization code and starts the session its sign-in gives,
   * in one statement (DESIGN §3.15): the code is marked used and names the
   * session; if it is unexpired and bound to this client, PKCE challenge and
   * (when presented) redirect URI, and the sign-in behind it still holds (its
   * browser session live, its user enabled, share-locked as a login's start
   * locks it), the session starts with the code's methods and time, and a
   * code of the challenge endpoint records `login_succeeded` (a browser
   * session's sign-in was recorded when it started). A second use of the code waits for this
   * statement's row lock, so it always finds the session to revoke. Answers
   * the code as it was spent and the user as it is (null: no such code,
   * unspent), and the started session when one started.
   */
  async startFromCode (input: {
    codeHash: Uint8Array<ArrayBuffer>
    clientId: string
    codeChallenge: string
    redirectUri: string | undefined
    lifetimes: { user: SessionLifetimes; admin: SessionLifetimes }
    context: SessionContext
  }): Promise<CodeStart | null> {
    const sessionId = randomUUID()
    const refreshToken = this.tokens.first(sessionId).token
    const now = new Date(this.now())
    const { rows } = await this.sql.query<CodeStartRow>({
      name: 'start_session_from_code',
      text: START_FROM_CODE_STATEMENT,
      values: [
        now,
        sessionId,
        input.codeHash,
        input.clientId,
        input.codeChallenge,
        input.redirectUri ?? null,
        input.lifetimes.admin.idleTtlSeconds,
        input.lifetimes.user.idleTtlSeconds,
        input.lifetimes.admin.absoluteTtlSeconds,
        input.lifetimes.user.absoluteTtlSeconds,
        input.context.userAgent?.slice(0, 512) ?? null,
        input.context.ip ?? null,
        this.tokens.hash(refreshToken),
      ],
    })
    const row = rows[0]
    if (!row) return null
    const started = row.session_id === null
      ? null
      : {
          refreshToken,
          grant: {
            sessionId,
            userId: row.user_id,
            clientId: input.clientId,
            scope: row.scope,
            role: row.role as Role,
            absoluteExpiresAt: row.absolute_expires_at!,
            idleExpiresAt: row.idle_expires_at!,
            amr: row.amr ?? [],
            authTime: row.auth_time,
          },
        }
    return { code: row, started }
  }

  /**
   * Exchanges a refresh token for its successor: single use, one successor
   * under any concurrency, the grace window, reuse detection.
   *
   * A token that is not ours is refused here, without touching the database.
   * The happy path is then one conditional UPDATE of the session row (its
   * generation and live hash must still be the presented token's), so of any
   * number of concurrent presentations exactly one row-locks and advances it;
   * the others re-check after it commits, find the generation moved on, and
   * fall through to `classify`.
   *
   * `raise` is a step-up's: the same rotation also records the new
   * authentication facts; a plain refresh keeps them as they are.
   */
  async rotate (refreshToken: string, clientId: string, context: SessionContext = {}, raise?: Authentication): Promise<RotationResult> {
    const presented = this.tokens.read(refreshToken)
    if (!presented) return this.counted({ ok: false, reason: 'unknown' }, raise)
    const successor = this.tokens.descendant(presented)
    const now = new Date(this.now())
    // pg directly, not $queryRaw: this runs on every refresh. Named, so that
    // each connection has Postgres parse and plan it once; Prisma's raw
    // queries are unnamed, and its per-query work comes on top.
    const { rows } = await this.sql.query<RotatedRow>({
      name: 'rotate_refresh_token',
      text: ROTATE_STATEMENT,
      values: [
        now,
        presented.sessionId,
        presented.generation,
        this.tokens.hash(refreshToken),
        clientId,
        context.ip ?? null,
        context.userAgent?.slice(0, 512) ?? null,
        this.tokens.hash(successor.token),
        raise?.amr ?? null,
        raise?.authTime ?? null,
      ],
    })
    const row = rows[0]
    if (row) return this.counted({ ok: true, refreshToken: successor.token, grant: toGrant(presented.sessionId, row) }, raise)
    // A step-up raises the facts only with a rotation; a retry in the grace window gets the session's facts as they are.
    return this.counted(await this.classify(presented, clientId, now, context), raise)
  }

  /** A rotation's result, told to onRefresh when it was a refresh (no `raise`: not a step-up's). */
  private counted (result: RotationResult, raise: Authentication | undefined): RotationResult {
    if (raise === undefined) this.options.onRefresh?.(result.ok ? 'success' : result.reason)
    return result
  }

  /**
   * A step-up (DESIGN §3.12): the user just proved a factor again inside
   * this session, so the session rotates as a refresh does and records
   * `authentication` (the methods on top of the login's, auth_time now),
   * audited. A token that is not the live one raises nothing: a retired one
   * is judged as a refresh would judge it (reuse revokes the session), and a
   * retry inside the grace window is refused rather than answered with the
   * unraised facts.
   */
  async stepUp (refreshToken: string, clientId: string, context: SessionContext, authentication: Authentication): Promise<RotationResult> {
    const result = await this.rotate(refreshToken, clientId, context, authentication)
    if (!result.ok) return result
    if (result.grant.authTime.getTime() !== authentication.authTime.getTime()) return { ok: false, reason: 'unknown', sessionId: result.grant.sessionId, userId: result.grant.userId }
    await recordAuditEvent(this.db, {
      type: 'stepped_up',
      userId: result.grant.userId,
      actorId: result.grant.userId,
      ip: context.ip,
      details: { sessionId: result.grant.sessionId, amr: result.grant.amr },
    })
    return result
  }

  /**
   * Why a presented token of ours did not rotate, and the answers that depend
   * on it: inside the grace window a retired token gets the family's live
   * token back and revokes nothing; outside it, it revokes the whole session
   * (reuse).
   */
  private async classify (presented: RefreshToken, clientId: string, now: Date, context: SessionContext): Promise<RotationResult> {
    const { rows } = await this.sql.query<SessionRow>({ name: 'session_state', text: SESSION_STATEMENT, values: [presented.sessionId] })
    const row = rows[0]
    // Gone: deleted by retention long after it ended.
    if (!row) return { ok: false, reason: 'unknown' }
    const ids = { sessionId: presented.sessionId, userId: row.user_id }
    if (row.client_id !== clientId) return { ok: false, reason: 'client_mismatch', ...ids }
    if (row.revoked_at) return { ok: false, reason: 'revoked', ...ids }
    if (row.disabled) return { ok: false, reason: 'user_disabled', ...ids }
    const behind = row.generation - presented.generation
    // A generation the database has not reached: minted here, but the
    // database was restored from before it. Nothing to revoke over.
    if (behind < 0) return { ok: false, reason: 'unknown', ...ids }
    if (behind === 0) {
      // The live token that did not rotate can only be an expired one.
      if (!row.refresh_token_hash || !this.isLiveHash(row, presented.token)) return { ok: false, reason: 'unknown', ...ids }
      return { ok: false, reason: 'expired', ...ids }
    }
    if (row.idle_expires_at <= now || row.absolute_expires_at <= now) return { ok: false, reason: 'expired', ...ids }
    const retiredAt = (row.recent_retirements ?? [])[behind - 1]
    if (retiredAt && retiredAt.getTime() + this.options.graceSeconds * 1000 > now.getTime()) {
      // The successor may itself have rotated since (two tabs): answer with
      // the family's live token, derived again, never a spent one.
      const live = this.tokens.descendant(presented, behind)
      if (!this.isLiveHash(row, live.token)) return { ok: false, reason: 'unknown', ...ids }
      // Harmless when it is a lost response or a second tab; a pattern of them is worth seeing.
      await recordAuditEvent(this.db, {
        type: 'refresh_token_replayed',
        userId: row.user_id,
        ip: context.ip,
        details: { sessionId: presented.sessionId, retiredAt: retiredAt.toISOString() },
      })
      return { ok: true, refreshToken: live.token, grant: toGrant(presented.sessionId, row) }
    }
    await this.revokeForReuse(presented.sessionId, row.user_id, now, context.ip)
    return { ok: false, reason: 'reused', ...ids }
  }

  private isLiveHash (row: SessionRow, token: string): boolean {
    return row.refresh_token_hash !== null && Buffer.from(this.tokens.hash(token)).equals(row.refresh_token_hash)
  }

  /** Rule 4: the whole family dies, once, with an audit event. */
  private async revokeForReuse (sessionId: string, userId: string, now: Date, ip: string | undefined): Promise<void> {
    const detected = await this.db.$transaction(async (tx) => {
      const revoked = await revokeSessions(tx, { id: sessionId }, 'refresh_token_reused', now)
      if (revoked.length === 1) {
        // The presenter's address: the thief's or the victim's, worth keeping either way.
        await recordAuditEvent(tx, { type: 'refresh_token_reused', userId, ip, details: { sessionId } })
      }
      return revoked.length === 1
    })
    if (detected) this.options.onReuseDetected?.()
    this.options.onRevoked?.([sessionId])
  }

  /**
   * The unrevoked session a refresh token of ours belongs to (its live token
   * or any it retired), for logout and RFC 7009 revocation.
   */
  async findByRefreshToken (refreshToken: string): Promise<{ sessionId: string; userId: string; clientId: string } | null> {
    const presented = this.tokens.read(refreshToken)
    if (!presented) return null
    const session = await this.db.session.findUnique({
      where: { id: presented.sessionId },
      select: { id: true, userId: true, clientId: true, revokedAt: true, generation: true },
    })
    if (!session || session.revokedAt || presented.generation > session.generation) return null
    return { sessionId: session.id, userId: session.userId, clientId: session.clientId }
  }

  /**
   * The grant of a session that can act now: not revoked, not expired, its
   * user enabled. With `refreshToken`, also that token must be the session's
   * live one (not retired). Used by introspection.
   */
  async liveGrant (by: { refreshToken: string } | { sessionId: string }): Promise<SessionGrant | null> {
    const now = new Date(this.now())
    let sessionId: string
    let token: string | undefined
    if ('refreshToken' in by) {
      const presented = this.tokens.read(by.refreshToken)
      if (!presented) return null
      sessionId = presented.sessionId
      token = presented.token
    } else {
      sessionId = by.sessionId
    }
    const { rows } = await this.sql.query<SessionRow>({ name: 'session_state', text: SESSION_STATEMENT, values: [sessionId] })
    const row = rows[0]
    if (!row || row.revoked_at || row.disabled || row.idle_expires_at <= now || row.absolute_expires_at <= now) return null
    if (token !== undefined && !this.isLiveHash(row, token)) return null
    return toGrant(sessionId, row)
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

/** One session (of a user), a user's sessions (but one), or those a user signed in to with one of some passkeys. */
export type SessionsToRevoke =
  | { sessionId: string; userId?: string }
  | { userId: string; exceptSessionId?: string }
  | { userId: string; passkeyIds: string[] }
  /** A client's sessions: all of them (the client is deleted), or one user's (their consent is withdrawn). */
  | { clientId: string; userId?: string }

function sessionFilter (where: SessionsToRevoke): Prisma.SessionWhereInput {
  if ('clientId' in where) return { clientId: where.clientId, ...(where.userId ? { userId: where.userId } : {}) }
  if ('sessionId' in where) return { id: where.sessionId, ...(where.userId ? { userId: where.userId } : {}) }
  if ('passkeyIds' in where) return { userId: where.userId, passkeyId: { in: where.passkeyIds } }
  return { userId: where.userId, ...(where.exceptSessionId ? { id: { not: where.exceptSessionId } } : {}) }
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

/** The columns a session starts with, in the order both start statements give them. */
const SESSION_COLUMNS = `id, user_id, client_id, scope, idle_ttl_seconds, user_agent, ip, created_at, last_refreshed_at,
                          idle_expires_at, absolute_expires_at, generation, refresh_token_hash, amr, auth_time, passkey_id`

/**
 * An authorization code's exchange in one statement (SessionStore.startFromCode):
 * $1 now, $2 the session id, $3 the code's hash, $4 client id, $5 the PKCE
 * challenge of the presented verifier, $6 the presented redirect URI (null:
 * none), $7-$10 idle and absolute TTLs for an admin and a user, $11 user
 * agent, $12 ip, $13 the first refresh token's hash.
 */
const START_FROM_CODE_STATEMENT = `
  WITH code AS (
    UPDATE authorization_codes SET used_at = $1, session_id = $2
    WHERE code_hash = $3 AND used_at IS NULL
    RETURNING id, client_id, user_id, redirect_uri, code_challenge, scope, nonce, browser_session_id, password_hash_mac, passkey_id, amr, auth_time, expires_at
  ), bound AS (
    SELECT * FROM code
    WHERE expires_at > $1 AND client_id = $4 AND code_challenge = $5 AND ($6::text IS NULL OR redirect_uri = $6::text)
  ), account AS (
    SELECT u.id, u.role, CASE WHEN u.role = 'admin' THEN $7::int ELSE $8::int END AS idle_ttl,
           CASE WHEN u.role = 'admin' THEN $9::int ELSE $10::int END AS absolute_ttl
    FROM bound AS b
    JOIN users AS u ON u.id = b.user_id
    -- The browser session, by its primary key (a correlated EXISTS here got a generic plan that scanned sessions).
    LEFT JOIN LATERAL (SELECT s.user_id, s.revoked_at, s.idle_expires_at, s.absolute_expires_at FROM sessions AS s WHERE s.id = b.browser_session_id) AS browser ON true
    WHERE NOT u.disabled
      AND (b.browser_session_id IS NULL OR (browser.user_id = u.id AND browser.revoked_at IS NULL AND browser.idle_expires_at > $1 AND browser.absolute_expires_at > $1))
    FOR SHARE OF u
  ), session AS (
    INSERT INTO sessions (${SESSION_COLUMNS})
    SELECT $2, a.id, $4, b.scope, a.idle_ttl, $11, $12, $1, $1,
           LEAST($1 + make_interval(secs => a.idle_ttl), $1 + make_interval(secs => a.absolute_ttl)), $1 + make_interval(secs => a.absolute_ttl),
           0, $13, b.amr, b.auth_time, b.passkey_id
    FROM account AS a, bound AS b
    RETURNING id, idle_expires_at, absolute_expires_at
  ), audit AS (
    -- A code of the authorization challenge endpoint is the login itself; one from a browser session
    -- at this service was signed in when that session started (and audited then): single sign-on, no new login.
    INSERT INTO audit_events (type, user_id, ip, details)
    SELECT 'login_succeeded', c.user_id, $12, jsonb_build_object('sessionId', s.id, 'clientId', $4::text)
    FROM session AS s, code AS c
    WHERE c.browser_session_id IS NULL
  )
  SELECT c.*, u.role::text AS role, u.password_hash, u.email, u.email_verified_at, u.created_at,
         s.id AS session_id, s.idle_expires_at, s.absolute_expires_at
  FROM code AS c
  LEFT JOIN users AS u ON u.id = c.user_id
  LEFT JOIN session AS s ON true`

/**
 * A session's start in one statement: $1 session id, $2 user id, $3 role and
 * $4 password hash as verified ($4 null: no password involved), $5 client
 * id, $6 scope, $7 idle TTL, $8 user agent, $9 ip, $10 now, $11 idle and $12
 * absolute expiry, $13 the first refresh token's hash, $14 the audit event
 * to record with it (null: none), $15 the login's RFC 8176 methods (its
 * auth_time is $10), $16 the passkey it proved (null: none). FOR SHARE waits for a concurrent change of
 * the user row to commit and then re-checks the conditions against the new
 * row.
 */
const START_STATEMENT = `
  WITH account AS (
    SELECT u.id FROM users AS u
    WHERE u.id = $2 AND u.role = $3::role AND NOT u.disabled
      AND ($4::text IS NULL OR u.password_hash = $4::text)
    FOR SHARE
  ), session AS (
    INSERT INTO sessions (${SESSION_COLUMNS})
    SELECT $1, a.id, $5, $6, $7, $8, $9, $10, $10, $11, $12, 0, $13, $15::text[], $10, $16::uuid FROM account AS a
    RETURNING id
  ), audit AS (
    INSERT INTO audit_events (type, user_id, ip, details)
    SELECT $14::text, $2, $9, jsonb_build_object('sessionId', s.id, 'clientId', $5::text)
    FROM session AS s WHERE $14::text IS NOT NULL
  )
  SELECT id FROM session`

/**
 * Rotation in one statement, one row: $1 now, $2 session id, $3 presented
 * generation, $4 presented token's hash, $5 client id, $6 ip, $7 user agent,
 * $8 successor's hash, $9 and $10 a step-up's amr and auth_time (null: keep
 * the session's). It advances the session only if the presented token
 * is its live one and the session can refresh. It writes no indexed column,
 * so Postgres can update the row in place (HOT).
 */
const ROTATE_STATEMENT = `
  UPDATE sessions AS s SET
    generation = s.generation + 1,
    refresh_token_hash = $8,
    recent_retirements = (ARRAY[$1::timestamptz] || s.recent_retirements)[1:${RECENT_RETIREMENTS}],
    last_refreshed_at = $1,
    ip = COALESCE($6::text, s.ip),
    user_agent = COALESCE($7::text, s.user_agent),
    idle_expires_at = LEAST($1::timestamptz + make_interval(secs => s.idle_ttl_seconds), s.absolute_expires_at),
    amr = COALESCE($9::text[], s.amr),
    auth_time = COALESCE($10::timestamptz, s.auth_time)
  FROM users AS u
  WHERE s.id = $2 AND s.generation = $3 AND s.refresh_token_hash = $4
    AND s.client_id = $5 AND s.revoked_at IS NULL AND s.idle_expires_at > $1 AND s.absolute_expires_at > $1
    AND u.id = s.user_id AND NOT u.disabled
  RETURNING s.user_id, s.client_id, s.scope, s.idle_expires_at, s.absolute_expires_at, s.amr, s.auth_time, u.role::text AS role`

/** A session with what its refresh tokens are judged by: $1 session id. */
const SESSION_STATEMENT = `
  SELECT s.user_id, s.client_id, s.scope, s.idle_expires_at, s.absolute_expires_at, s.amr, s.auth_time, s.revoked_at,
         s.generation, s.refresh_token_hash, s.recent_retirements, u.disabled, u.role::text AS role
  FROM sessions AS s JOIN users AS u ON u.id = s.user_id
  WHERE s.id = $1`

interface RotatedRow {
  user_id: string
  client_id: string
  scope: string
  idle_expires_at: Date
  absolute_expires_at: Date
  amr: string[] | null
  auth_time: Date
  role: string
}

interface SessionRow extends RotatedRow {
  revoked_at: Date | null
  generation: number
  refresh_token_hash: Buffer | null
  recent_retirements: Date[] | null
  disabled: boolean
}

function toGrant (sessionId: string, row: RotatedRow): SessionGrant {
  return {
    sessionId,
    userId: row.user_id,
    clientId: row.client_id,
    scope: row.scope,
    role: row.role as Role,
    idleExpiresAt: row.idle_expires_at,
    absoluteExpiresAt: row.absolute_expires_at,
    amr: row.amr ?? [],
    authTime: row.auth_time,
  }
}
