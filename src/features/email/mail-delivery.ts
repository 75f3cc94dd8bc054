import type { PrismaClient } from '../../generated/prisma/client.js'
import type { RenderedEmail } from './email-templates.js'
import type { Outbox, OutboxRow } from './outbox.js'

/**
 * The outbox's delivery worker. Every instance may run one; they share the
 * rows through the database.
 *
 * Claiming: a short transaction takes up to `batchSize` due rows with
 * `FOR UPDATE SKIP LOCKED` (two workers claiming at the same moment skip each
 * other's rows instead of waiting or taking the same ones), counts the
 * attempt and moves each row's next_attempt_at forward by a lease, then
 * commits; the messages are sent after the commit, and each outcome is
 * written only if the row is still the attempt this worker claimed
 * (attempts unchanged). Another worker sees a leased row as not due, so no
 * two workers send one message at once.
 *
 * Why a lease rather than holding the row lock through the send: a send
 * waits on a remote server for up to the SMTP timeouts, and a transaction
 * held open that long would keep a pooled connection from every other
 * request, and on the embedded database (one connection) stall the whole
 * service. The lease is longer than the worst case of one batch (the
 * connection, greeting and socket timeouts of each of its messages), so a
 * lease ends only when its worker died; its messages are then sent again by
 * another. That is the one case of a second copy, inherent to SMTP: a
 * worker that dies between the server's acceptance and its commit cannot
 * know the message went out (at-least-once). A crash otherwise loses
 * nothing: the row stays due.
 */

/** What sends a message: nodemailer's SMTP transport in the service, anything alike in tests. */
export interface MailTransport {
  send(message: RenderedEmail & { to: string }): Promise<void>
  close(): void
}

export interface DeliveryOptions {
  maxAttempts: number
  retryBaseSeconds: number
  /** Messages claimed per batch. */
  batchSize: number
  /** Longer than the SMTP timeouts of a whole batch. */
  leaseSeconds: number
  now: () => number
  log: { info(object: object, message: string): void; warn(object: object, message: string): void }
}

export interface BatchOutcome {
  sent: number
  failed: number
  dead: number
  /** From each sent message's creation to the SMTP server's acceptance. */
  latenciesMs: number[]
}

/** The longest wait between two attempts. */
const MAX_RETRY_DELAY_SECONDS = 3600
const LAST_ERROR_MAX_LENGTH = 500

interface ClaimedRow extends OutboxRow {
  attempts: number
  createdAt: Date
}

/** Exponential backoff: base, 2 × base, 4 × base… after the 1st, 2nd, 3rd failed attempt, capped. */
export function retryDelaySeconds (attempts: number, baseSeconds: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, baseSeconds * 2 ** Math.max(0, attempts - 1))
}

export class MailDelivery {
  /** Totals since start, also logged with each batch. */
  readonly totals = { sent: 0, failed: 0, dead: 0 }
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | null = null
  private again = false
  private stopped = false

  constructor (
    private readonly db: PrismaClient,
    private readonly outbox: Outbox,
    private readonly transport: MailTransport,
    private readonly options: DeliveryOptions
  ) {}

  /** Polls for due messages every `intervalMs` until stop(). */
  start (intervalMs: number): void {
    this.timer = setInterval(() => this.kick(), intervalMs)
    this.timer.unref()
    this.kick()
  }

  /** Runs a batch now (or right after the one running): called after a message is committed on this instance. */
  kick (): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.drain()
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'mail delivery: batch failed'))
      .finally(() => {
        this.running = null
      })
  }

  /** Stops polling and waits for the batch in flight (bounded by the SMTP timeouts). */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.running
    this.transport.close()
  }

  /** Batches until one finds nothing due (or the worker stops). */
  private async drain (): Promise<void> {
    for (;;) {
      this.again = false
      const outcome = await this.runBatch()
      const busy = outcome.sent + outcome.failed + outcome.dead
      if (busy > 0) {
        const latency = outcome.latenciesMs
        this.options.log.info(
          {
            sent: outcome.sent,
            failed: outcome.failed,
            dead: outcome.dead,
            ...(latency.length > 0 ? { latencyMsMax: Math.max(...latency), latencyMsMin: Math.min(...latency) } : {}),
            totals: this.totals,
          },
          'mail delivery: batch done'
        )
      }
      if (this.stopped || (busy < this.options.batchSize && !this.again)) return
    }
  }

  /** Claims one batch of due messages and tries each once. */
  async runBatch (): Promise<BatchOutcome> {
    const outcome: BatchOutcome = { sent: 0, failed: 0, dead: 0, latenciesMs: [] }
    for (const row of await this.claim()) {
      const result = await this.attempt(row)
      outcome[result.kind]++
      this.totals[result.kind]++
      if (result.kind === 'sent') outcome.latenciesMs.push(result.latencyMs)
    }
    return outcome
  }

  private async claim (): Promise<ClaimedRow[]> {
    const now = new Date(this.options.now())
    const leaseEnd = new Date(now.getTime() + this.options.leaseSeconds * 1000)
    return this.db.$queryRaw<ClaimedRow[]>`
      UPDATE email_outbox o
         SET attempts = o.attempts + 1, next_attempt_at = ${leaseEnd}
        FROM (SELECT id FROM email_outbox
               WHERE next_attempt_at <= ${now}
               ORDER BY next_attempt_at
               LIMIT ${this.options.batchSize}
               FOR UPDATE SKIP LOCKED) due
       WHERE o.id = due.id
   RETURNING o.id, o.recipient, o.template, o.data, o.secret_encrypted AS "secretEncrypted", o.attempts, o.created_at AS "createdAt"`
  }

  private async attempt (row: ClaimedRow): Promise<{ kind: 'sent'; latencyMs: number } | { kind: 'failed' | 'dead' }> {
    let secretForScrub: string | null = null
    try {
      const rendered = this.outbox.render(row)
      secretForScrub = linkSecretOf(rendered)
      await this.transport.send({ ...rendered, to: row.recipient })
    } catch (error) {
      return this.recordFailure(row, describe(error, secretForScrub))
    }
    const sentAt = new Date(this.options.now())
    await this.db.$executeRaw`
      UPDATE email_outbox
         SET sent_at = ${sentAt}, next_attempt_at = NULL, secret_encrypted = NULL, last_error = NULL
       WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND sent_at IS NULL`
    return { kind: 'sent', latencyMs: sentAt.getTime() - row.createdAt.getTime() }
  }

  private async recordFailure (row: ClaimedRow, lastError: string): Promise<{ kind: 'failed' | 'dead' }> {
    const now = new Date(this.options.now())
    if (row.attempts >= this.options.maxAttempts) {
      // Parked for an admin to see; its secret is useless from now on.
      await this.db.$executeRaw`
        UPDATE email_outbox
           SET dead_at = ${now}, next_attempt_at = NULL, secret_encrypted = NULL, last_error = ${lastError}
         WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND sent_at IS NULL`
      this.options.log.warn({ messageId: row.id, attempts: row.attempts, error: lastError }, 'mail delivery: message dead, no more attempts')
      return { kind: 'dead' }
    }
    const retryAt = new Date(now.getTime() + retryDelaySeconds(row.attempts, this.options.retryBaseSeconds) * 1000)
    await this.db.$executeRaw`
      UPDATE email_outbox SET next_attempt_at = ${retryAt}, last_error = ${lastError}
       WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND sent_at IS NULL`
    this.options.log.warn({ messageId: row.id, attempts: row.attempts, retryAt, error: lastError }, 'mail delivery: attempt failed')
    return { kind: 'failed' }
  }
}

/** The token in a rendered message's link, so an error that echoes the message cannot carry it into the row or the log. */
function linkSecretOf (rendered: RenderedEmail): string | null {
  const match = /[#?&]token=([^&\s"<]+)/.exec(rendered.text)
  return match ? decodeURIComponent(match[1]!) : null
}

function describe (error: unknown, secret: string | null): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  const scrubbed = secret ? text.replaceAll(secret, '[redacted]').replaceAll(encodeURIComponent(secret), '[redacted]') : text
  return scrubbed.slice(0, LAST_ERROR_MAX_LENGTH)
}
