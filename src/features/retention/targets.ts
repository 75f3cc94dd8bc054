/**
 * How a capability declares what retention deletes of its tables (its
 * catalogue's `retention`), without importing the retention service: one
 * statement per target, run batch by batch by features/retention.
 */

export interface Cutoffs {
  deadSessions: Date
  /** null: keep every audit event. */
  auditEvents: Date | null
  /** Outbox rows sent or dead, and link secrets used or expired, before this. */
  spentEmail: Date
  /** The start of the pass: short-lived secrets and ceremony state count their margins from it. */
  now: Date
}

export interface SweepTarget {
  name: string
  kind: 'sweep'
  cutoff: (cutoffs: Cutoffs) => Date | null
  /** $1 the last id of the previous batch, $2 ids to scan, $3 cutoff. Returns last, scanned, deleted. */
  statement: string
}

export interface OldestFirstTarget {
  name: string
  kind: 'oldest'
  cutoff: (cutoffs: Cutoffs) => Date | null
  /** $1 cutoff, $2 rows to delete. Returns deleted. */
  statement: string
}

export type RetentionTarget = SweepTarget | OldestFirstTarget

export const DAY_MS = 24 * 3600 * 1000
export const HOUR_MS = 3600 * 1000
export const before = (c: Cutoffs, ms: number) => new Date(c.now.getTime() - ms)
/** Before every uuid: where a sweep starts. */
export const FIRST_ID = '00000000-0000-0000-0000-000000000000'

/** An oldest-first statement deleting the rows of `table` whose `column` (indexed, set once) is before $1. */
export function oldestFirst (table: string, column: string): string {
  return `
    WITH doomed AS (
      SELECT id FROM ${table} WHERE ${column} < $1 ORDER BY ${column} LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    DELETE FROM ${table} AS t USING doomed WHERE t.id = doomed.id`
}

/** A sweep statement over `table`, deleting the rows `dead` (SQL, `$3` the cutoff) says are dead. */
export function sweep (table: string, dead: string): string {
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
