import { setTimeout as sleep } from 'node:timers/promises'
import type { SqlPool } from '../../db/sql-pool.js'

/**
 * Retention (DESIGN §3.13): what is dead is deleted, in small batches, by any
 * number of instances at once.
 *
 * Each target deletes one batch per statement and locks only the rows it
 * deletes, skipping any another instance (or a live request) holds (`FOR
 * UPDATE SKIP LOCKED`), so passes never wait on each other or on traffic and
 * no statement holds a lock for longer than one small batch. Nothing is
 * rewritten: deleted rows become free space that autovacuum hands back to
 * later inserts.
 *
 * A target is either
 * - a sweep: it walks the table in primary-key order, a batch of ids at a
 *   time, and deletes the dead rows among them. Used where deadness depends on
 *   columns that hot writes change (a session's idle expiry moves on every
 *   rotation): an index on them would cost every rotation its HOT update,
 *   while a pass over the table is cheap because the table is small, O(live
 *   rows) (bench figure 6); or
 * - oldest first: it deletes the oldest rows by an indexed, never-updated
 *   time, a batch at a time, until none is older than the cutoff.
 */

export interface RetentionPolicy {
  /** Sessions and API keys dead (expired or revoked) for longer than this are deleted. */
  sessionRetentionDays: number
  /** Audit events older than this are deleted; 0 keeps them for ever. */
  auditRetentionDays: number
  /**
   * The longest an access token lives. A revoked session is kept at least
   * that long whatever the retention days say: its row is what tells a
   * restarted instance to refuse the session's access tokens.
   */
  accessTokenLifetimeMs: number
  /** Sent and dead emails, and used or expired link secrets, older than this are deleted. */
  emailRetentionDays: number
}

/** Rows deleted by one pass, by target. */
export type RetentionReport = Record<string, number>

interface Cutoffs {
  deadSessions: Date
  /** null: keep every audit event. */
  auditEvents: Date | null
  /** Outbox rows sent or dead, and link secrets used or expired, before this. */
  spentEmail: Date
  /** The start of the pass: short-lived secrets and ceremony state count their margins from it. */
  now: Date
}

interface SweepTarget {
  name: string
  kind: 'sweep'
  cutoff: (cutoffs: Cutoffs) => Date | null
  /** $1 the last id of the previous batch, $2 ids to scan, $3 cutoff. Returns last, scanned, deleted. */
  statement: string
}

interface OldestFirstTarget {
  name: string
  kind: 'oldest'
  cutoff: (cutoffs: Cutoffs) => Date | null
  /** $1 cutoff, $2 rows to delete. Returns deleted. */
  statement: string
}

export type RetentionTarget = SweepTarget | OldestFirstTarget

const DAY_MS = 24 * 3600 * 1000
const HOUR_MS = 3600 * 1000
const before = (c: Cutoffs, ms: number) => new Date(c.now.getTime() - ms)
/** Before every uuid: where a sweep starts. */
const FIRST_ID = '00000000-0000-0000-0000-000000000000'

/** An oldest-first statement deleting the rows of `table` whose `column` (indexed, set once) is before $1. */
function oldestFirst (table: string, column: string): string {
  return `
    WITH doomed AS (
      SELECT id FROM ${table} WHERE ${column} < $1 ORDER BY ${column} LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    DELETE FROM ${table} AS t USING doomed WHERE t.id = doomed.id`
}

/** A sweep statement over `table`, deleting the rows `dead` (SQL, `$3` the cutoff) says are dead. */
function sweep (table: string, dead: string): string {
  return `
    WITH scanned AS (
      SELECT id FROM ${table} WHERE id > $1::uuid ORDER BY id LIMIT $2
    ), doomed AS (
      SELECT t.id FROM ${table} AS t JOIN scanned USING (id)
      WHERE ${dead}
      FOR UPDATE OF t SKIP LOCKED
    ), deleted AS (
      DELETE FROM ${table} AS t USING doomed WHERE t.id = doomed.id RETURNING 1
    )
    SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1)::text AS last,
           (SELECT count(*) FROM scanned)::int AS scanned,
           (SELECT count(*) FROM deleted)::int AS deleted`
}

/**
 * What retention deletes. Deleting a session takes nothing that a live
 * session or the audit view shows: audit events name sessions in their
 * details, without a foreign key, and outlive them.
 */
export const RETENTION_TARGETS: RetentionTarget[] = [
  {
    name: 'sessions',
    kind: 'sweep',
    cutoff: (c) => c.deadSessions,
    statement: sweep('sessions', 'LEAST(COALESCE(t.revoked_at, \'infinity\'), t.idle_expires_at, t.absolute_expires_at) < $3'),
  },
  {
    name: 'apiKeys',
    kind: 'sweep',
    cutoff: (c) => c.deadSessions,
    statement: sweep('api_keys', 'LEAST(COALESCE(t.revoked_at, \'infinity\'), COALESCE(t.expires_at, \'infinity\')) < $3'),
  },
  { name: 'auditEvents', kind: 'oldest', cutoff: (c) => c.auditEvents, statement: oldestFirst('audit_events', 'at') },
  // The email outbox (DESIGN §3.11): a sent or dead message's secret is
  // already erased; the row stays only for the admins' view of deliveries.
  { name: 'outboxSent', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('email_outbox', 'sent_at') },
  { name: 'outboxDead', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('email_outbox', 'dead_at') },
  // Link secrets: useless once used or expired; kept a while only so that a
  // late click is told "already used" or "expired" rather than "not valid".
  { name: 'accountTokensUsed', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('account_tokens', 'used_at') },
  { name: 'accountTokensExpired', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('account_tokens', 'expires_at') },
  // Second factors (DESIGN §3.12): a login's second-step token is dead once
  // used or expired (5 minutes); an hour's margin lets a late attempt be told
  // why. A TOTP enrolment never confirmed is void after an hour
  // (totp-factors.ts PENDING_ENROLMENT_TTL_MS): a sweep, the table is one row per user.
  { name: 'mfaTokensUsed', kind: 'oldest', cutoff: (c) => before(c, HOUR_MS), statement: oldestFirst('mfa_tokens', 'used_at') },
  { name: 'mfaTokensExpired', kind: 'oldest', cutoff: (c) => before(c, HOUR_MS), statement: oldestFirst('mfa_tokens', 'expires_at') },
  { name: 'pendingTotpEnrolments', kind: 'sweep', cutoff: (c) => before(c, HOUR_MS), statement: sweep('totp_factors', 't.confirmed_at IS NULL AND t.created_at < $3') },
  // WebAuthn challenges: a spent one is deleted by the request that spends it, an expired one here.
  { name: 'webauthnChallengesExpired', kind: 'oldest', cutoff: (c) => c.now, statement: oldestFirst('webauthn_challenges', 'expires_at') },
]

export class Retention {
  private readonly now: () => number
  private readonly batchSize: number
  private readonly pauseMs: number
  private readonly targets: RetentionTarget[]

  constructor (
    private readonly sql: SqlPool,
    private readonly policy: RetentionPolicy,
    options: {
      now?: () => number
      /** Rows scanned (sweeps) or deleted (oldest first) per statement. */
      batchSize?: number
      /** Pause between batches, so a pass never takes the database from traffic for long. */
      pauseMs?: number
      targets?: RetentionTarget[]
    } = {}
  ) {
    this.now = options.now ?? Date.now
    this.batchSize = options.batchSize ?? 500
    this.pauseMs = options.pauseMs ?? 10
    this.targets = options.targets ?? RETENTION_TARGETS
  }

  /**
   * One pass over every target: deletes everything dead at the start of the
   * pass, batch by batch. `signal` stops it between batches (shutdown).
   */
  async runPass (signal?: AbortSignal): Promise<RetentionReport> {
    const now = this.now()
    const cutoffs: Cutoffs = {
      deadSessions: new Date(now - Math.max(this.policy.sessionRetentionDays * DAY_MS, this.policy.accessTokenLifetimeMs)),
      auditEvents: this.policy.auditRetentionDays === 0 ? null : new Date(now - this.policy.auditRetentionDays * DAY_MS),
      spentEmail: new Date(now - this.policy.emailRetentionDays * DAY_MS),
      now: new Date(now),
    }
    const report: RetentionReport = {}
    for (const target of this.targets) {
      const cutoff = target.cutoff(cutoffs)
      report[target.name] = cutoff === null ? 0 : await this.runTarget(target, cutoff, signal)
    }
    return report
  }

  private async runTarget (target: RetentionTarget, cutoff: Date, signal: AbortSignal | undefined): Promise<number> {
    let deleted = 0
    let cursor = FIRST_ID
    for (;;) {
      if (signal?.aborted) return deleted
      if (target.kind === 'sweep') {
        const { rows } = await this.sql.query<{ last: string | null; scanned: number; deleted: number }>({
          name: `retention_${target.name}`,
          text: target.statement,
          values: [cursor, this.batchSize, cutoff],
        })
        const batch = rows[0]!
        deleted += batch.deleted
        if (batch.scanned < this.batchSize || batch.last === null) return deleted
        cursor = batch.last
      } else {
        const result = await this.sql.query({ name: `retention_${target.name}`, text: target.statement, values: [cutoff, this.batchSize] })
        deleted += result.rowCount ?? 0
        if ((result.rowCount ?? 0) < this.batchSize) return deleted
      }
      if (this.pauseMs > 0) await sleep(this.pauseMs)
    }
  }
}
