import { Prisma, type PrismaClient } from '../generated/prisma/client.js'

/**
 * The one delivery mechanism behind every outbox of the service: email
 * (DESIGN §3.11), webhooks and pushed security events (§3.18). A queue is a
 * table whose rows are written in the transaction of the change they
 * announce; workers on any instance deliver them later, at least once.
 *
 * Claiming: one statement takes up to `limit` due rows with `FOR UPDATE SKIP
 * LOCKED` (two workers claiming at the same moment skip each other's rows
 * instead of waiting or taking the same ones), counts the attempt and moves
 * each row's next_attempt_at forward by a lease. The row lock ends with that
 * statement; the lease is what keeps another worker away while this one
 * delivers (a leased row is not due). Each outcome is written only if the
 * row is still the attempt this worker claimed (attempts unchanged).
 *
 * Why a lease rather than holding the row lock through the delivery: a
 * delivery waits on a remote server, and a transaction held open that long
 * would keep a pooled connection from every other request (on the embedded
 * database, one connection, the whole service). The lease is longer than
 * the worst case of one batch, so it ends only when its worker died; the row
 * is then delivered again by another (the one case of a second copy, which
 * at-least-once delivery allows). A crash otherwise loses nothing.
 *
 * A queue table has the columns `id uuid`, `attempts int`, `next_attempt_at`
 * (NULL once done: the index holds only rows still to deliver), `last_error`,
 * `created_at`, `dead_at` and its own "done" column (`sent_at`,
 * `delivered_at`).
 */
export interface QueueTable {
  /** The table's name (a constant of the service, never input). */
  table: string
  /** The column set when a row is delivered. */
  doneColumn: string
  /**
   * What a claim returns besides id, attempts and createdAt: a select list
   * (with its aliases) over the row, alias `q`, and what `join` adds.
   */
  columns: string
  /** Tables joined to the row (alias `q`) for `columns`, e.g. its endpoint. */
  join?: string
  /** Assignments made when a row is done or dead, e.g. erasing a secret it carried. */
  onFinished?: string
}

export interface QueueOptions {
  maxAttempts: number
  retryBaseSeconds: number
  /** Longer than the worst case of one batch's deliveries. */
  leaseSeconds: number
  now: () => number
}

export interface ClaimedRow {
  id: string
  /** The same id, as the claim's subquery names it. */
  claimed_id?: string
  /** This attempt's number (1 for the first). */
  attempts: number
  createdAt: Date
}

/** One of the caller's columns, with a value for each row of a `delivered` call. */
export interface RowValues {
  /** A constant of the caller, never input. */
  column: string
  type: 'int' | 'text' | 'jsonb'
  values: readonly unknown[]
}

export type FailureOutcome = 'failed' | 'dead'

/** The longest wait between two attempts. */
export const MAX_RETRY_DELAY_SECONDS = 3600
const LAST_ERROR_MAX_LENGTH = 500

/** Exponential backoff: base, 2 × base, 4 × base… after the 1st, 2nd, 3rd failed attempt, capped at an hour. */
export function retryDelaySeconds (attempts: number, baseSeconds: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, baseSeconds * 2 ** Math.max(0, attempts - 1))
}

export class DeliveryQueue<Row extends ClaimedRow> {
  private readonly table: Prisma.Sql
  private readonly done: Prisma.Sql
  private readonly finished: Prisma.Sql
  private readonly columns: Prisma.Sql
  private readonly join: Prisma.Sql

  constructor (
    private readonly db: PrismaClient,
    private readonly definition: QueueTable,
    readonly options: QueueOptions
  ) {
    this.table = Prisma.raw(definition.table)
    this.done = Prisma.raw(definition.doneColumn)
    this.finished = definition.onFinished ? Prisma.raw(`, ${definition.onFinished}`) : Prisma.empty
    this.columns = Prisma.raw(definition.columns)
    this.join = Prisma.raw(definition.join ?? '')
  }

  /**
   * Claims up to `limit` due rows, oldest due first, each for one attempt
   * under a lease. `where` narrows the rows (over the alias `q`), e.g. one
   * stream's events; `leaseSeconds` overrides the queue's lease.
   */
  async claim (limit: number, options: { where?: Prisma.Sql; leaseSeconds?: number } = {}): Promise<Row[]> {
    const now = new Date(this.options.now())
    const leaseEnd = new Date(now.getTime() + (options.leaseSeconds ?? this.options.leaseSeconds) * 1000)
    const narrowed = options.where ? Prisma.sql`AND ${options.where}` : Prisma.empty
    try {
      return await this.db.$queryRaw<Row[]>`
      UPDATE ${this.table} o
         SET attempts = o.attempts + 1, next_attempt_at = ${leaseEnd}
        FROM (SELECT q.id AS claimed_id, ${this.columns}
                FROM ${this.table} q ${this.join}
               WHERE q.next_attempt_at <= ${now} ${narrowed}
               ORDER BY q.next_attempt_at
               LIMIT ${limit}
               FOR UPDATE OF q SKIP LOCKED) due
       WHERE o.id = due.claimed_id
   RETURNING o.id, o.attempts, o.created_at AS "createdAt", due.*`
    } catch (error) {
      // The statement may have committed after the client gave up on it (a
      // query timeout under load): its rows would wait out the whole lease.
      // They are the ones leased until exactly this claim's end; give them back.
      await this.db.$executeRaw`
        UPDATE ${this.table} SET next_attempt_at = ${now}, attempts = attempts - 1
         WHERE next_attempt_at = ${leaseEnd} AND ${this.done} IS NULL AND dead_at IS NULL`.catch(() => {})
      throw error
    }
  }

  /**
   * Marks claimed rows delivered (each only if still at the attempt claimed),
   * in one statement. `columns` sets the caller's own columns, one value per
   * row in the order of `rows`.
   */
  async delivered (rows: readonly Pick<Row, 'id' | 'attempts'>[], columns: readonly RowValues[] = []): Promise<number> {
    if (rows.length === 0) return 0
    const at = new Date(this.options.now())
    const values = columns.map((c) => Prisma.sql`, ${c.type === 'jsonb' ? c.values.map((v) => (v === null ? null : JSON.stringify(v))) : c.values}::${Prisma.raw(c.type === 'int' ? 'int[]' : 'text[]')}`)
    const names = columns.map((c) => Prisma.raw(`, ${c.column}`))
    const assignments = columns.map((c) => Prisma.raw(`, ${c.column} = c.${c.column}${c.type === 'jsonb' ? '::jsonb' : ''}`))
    return this.db.$executeRaw`
      UPDATE ${this.table} t
         SET ${this.done} = ${at}, next_attempt_at = NULL, last_error = NULL ${this.finished} ${concat(assignments)}
        FROM unnest(${rows.map((row) => row.id)}::uuid[], ${rows.map((row) => row.attempts)}::int[] ${concat(values)})
             AS c(id, attempts ${concat(names)})
       WHERE t.id = c.id AND t.attempts = c.attempts AND t.${this.done} IS NULL AND t.dead_at IS NULL`
  }

  /**
   * Records a failed attempt: the row is due again after the backoff, or
   * dead once it has had `maxAttempts` (or at once when `final`: nothing
   * another attempt could change). `set` adds assignments of the caller's
   * columns.
   */
  async failed (row: Pick<Row, 'id' | 'attempts'>, error: string, options: { set?: Prisma.Sql; final?: boolean } = {}): Promise<FailureOutcome> {
    const now = new Date(this.options.now())
    const lastError = error.slice(0, LAST_ERROR_MAX_LENGTH)
    const extra = options.set ? Prisma.sql`, ${options.set}` : Prisma.empty
    if (options.final || row.attempts >= this.options.maxAttempts) {
      await this.db.$executeRaw`
        UPDATE ${this.table}
           SET dead_at = ${now}, next_attempt_at = NULL, last_error = ${lastError} ${this.finished} ${extra}
         WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND ${this.done} IS NULL AND dead_at IS NULL`
      return 'dead'
    }
    const retryAt = new Date(now.getTime() + retryDelaySeconds(row.attempts, this.options.retryBaseSeconds) * 1000)
    await this.db.$executeRaw`
      UPDATE ${this.table} SET next_attempt_at = ${retryAt}, last_error = ${lastError} ${extra}
       WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND ${this.done} IS NULL AND dead_at IS NULL`
    return 'failed'
  }

  /**
   * Gives claimed rows back, due now and without counting the attempt: for
   * a batch that failed before any of it was tried (otherwise it would wait
   * for its lease to end).
   */
  async release (rows: readonly Pick<Row, 'id' | 'attempts'>[]): Promise<void> {
    if (rows.length === 0) return
    const now = new Date(this.options.now())
    await this.db.$executeRaw`
      UPDATE ${this.table} t SET next_attempt_at = ${now}, attempts = t.attempts - 1
        FROM unnest(${rows.map((row) => row.id)}::uuid[], ${rows.map((row) => row.attempts)}::int[]) AS c(id, attempts)
       WHERE t.id = c.id AND t.attempts = c.attempts AND t.${this.done} IS NULL AND t.dead_at IS NULL`
  }

  /**
   * Makes rows due now for another round of attempts (an admin's retry):
   * dead rows come back with a fresh budget; delivered rows are left alone
   * unless `redeliver`. The number of rows made due.
   */
  async requeue (where: Prisma.Sql, options: { redeliver?: boolean } = {}): Promise<number> {
    const now = new Date(this.options.now())
    const which = options.redeliver ? Prisma.empty : Prisma.sql`AND ${this.done} IS NULL`
    return this.db.$executeRaw`
      UPDATE ${this.table}
         SET next_attempt_at = ${now}, attempts = 0, dead_at = NULL, ${this.done} = NULL
       WHERE ${where} ${which}`
  }
}

export interface WorkerLog {
  info(object: object, message: string): void
  warn(object: object, message: string): void
}

/**
 * Runs batches of a queue on this instance: on a timer, and at once when
 * kicked (after this instance committed a row). `runBatch` claims and
 * delivers one batch and says how many rows it handled; a full batch is
 * followed by another at once.
 */
export class QueueWorker {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | null = null
  private again = false
  private stopped = false

  constructor (
    private readonly name: string,
    private readonly runBatch: () => Promise<{ handled: number; batchSize: number }>,
    private readonly log: WorkerLog,
    private readonly onStop: () => void | Promise<void> = () => {}
  ) {}

  /** Polls for due rows every `intervalMs` until stop(). */
  start (intervalMs: number): void {
    this.timer = setInterval(() => this.kick(), intervalMs)
    this.timer.unref()
    this.kick()
  }

  /** Runs a batch now (or right after the one running). */
  kick (): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.drain()
      .catch((error: unknown) => this.log.warn({ err: error }, `${this.name}: batch failed`))
      .finally(() => {
        this.running = null
      })
  }

  /** Resolves when the batch in flight (if any) is done. */
  async idle (): Promise<void> {
    await this.running
  }

  /** Stops polling and waits for the batch in flight. */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.running
    await this.onStop()
  }

  /** Batches until one finds fewer rows than it could take (or the worker stops). */
  private async drain (): Promise<void> {
    for (;;) {
      this.again = false
      const { handled, batchSize } = await this.runBatch()
      if (this.stopped || (handled < batchSize && !this.again)) return
    }
  }
}

/** SQL fragments one after another (Prisma.join refuses an empty list). */
function concat (parts: Prisma.Sql[]): Prisma.Sql {
  return parts.length === 0 ? Prisma.empty : Prisma.join(parts, '')
}

/** An error's text for a queue row and the log: its name and message, without `secret` if given. */
export function describeError (error: unknown, secret: string | null = null): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  const scrubbed = secret ? text.replaceAll(secret, '[redacted]').replaceAll(encodeURIComponent(secret), '[redacted]') : text
  return scrubbed.slice(0, LAST_ERROR_MAX_LENGTH)
}
