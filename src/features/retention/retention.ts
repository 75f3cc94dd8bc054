import { setTimeout as sleep } from 'node:timers/promises'
import type { SqlPool } from '../../db/sql-pool.js'
import { AUDIT_RETENTION } from '../../shared/audit.js'
import { CATALOGUES } from '../catalogues.js'
import { DAY_MS, FIRST_ID, type Cutoffs, type RetentionTarget } from './targets.js'

export type { RetentionTarget } from './targets.js'

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

/** What retention deletes, assembled from every capability's catalogue (features/catalogues.ts). */
export const RETENTION_TARGETS: RetentionTarget[] = [AUDIT_RETENTION, ...CATALOGUES.flatMap((catalogue) => ('retention' in catalogue ? [...catalogue.retention] : []))]

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
