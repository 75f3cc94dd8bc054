import type { PrismaClient } from '../../generated/prisma/client.js'
import type { RenderedEmail } from './email-templates.js'
import type { Outbox, OutboxRow } from './outbox.js'
import { DeliveryQueue, QueueWorker, describeError, type ClaimedRow, type WorkerLog } from '../../shared/delivery-queue.js'

export { retryDelaySeconds } from '../../shared/delivery-queue.js'

/**
 * The outbox's delivery worker. Every instance may run one; they share the
 * rows through the database, by the mechanism of shared/delivery-queue.ts
 * (claim with SKIP LOCKED under a lease, backoff, dead after
 * EMAIL_MAX_ATTEMPTS). The lease is longer than the SMTP timeouts of a whole
 * batch. The one case of a second copy is inherent to SMTP: a worker that
 * dies between the server's acceptance and its commit cannot know the
 * message went out (at-least-once).
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
  log: WorkerLog
}

export interface BatchOutcome {
  sent: number
  failed: number
  dead: number
  /** From each sent message's creation to the SMTP server's acceptance. */
  latenciesMs: number[]
}

type ClaimedMessage = ClaimedRow & OutboxRow

/** The email outbox as a delivery queue: a sent or dead message's secret is erased. */
const EMAIL_QUEUE = {
  table: 'email_outbox',
  doneColumn: 'sent_at',
  columns: 'q.recipient, q.template, q.data, q.secret_encrypted AS "secretEncrypted"',
  onFinished: 'secret_encrypted = NULL',
}

export class MailDelivery {
  /** Totals since start, also logged with each batch. */
  readonly totals = { sent: 0, failed: 0, dead: 0 }
  private readonly queue: DeliveryQueue<ClaimedMessage>
  private readonly worker: QueueWorker

  constructor (
    db: PrismaClient,
    private readonly outbox: Outbox,
    private readonly transport: MailTransport,
    private readonly options: DeliveryOptions
  ) {
    this.queue = new DeliveryQueue(db, EMAIL_QUEUE, options)
    this.worker = new QueueWorker('mail delivery', () => this.logged(), options.log, () => transport.close())
  }

  /** Polls for due messages every `intervalMs` until stop(). */
  start (intervalMs: number): void {
    this.worker.start(intervalMs)
  }

  /** Runs a batch now (or right after the one running): called after a message is committed on this instance. */
  kick (): void {
    this.worker.kick()
  }

  /** Stops polling and waits for the batch in flight (bounded by the SMTP timeouts). */
  async stop (): Promise<void> {
    await this.worker.stop()
  }

  private async logged (): Promise<{ handled: number; batchSize: number }> {
    const outcome = await this.runBatch()
    const handled = outcome.sent + outcome.failed + outcome.dead
    if (handled > 0) {
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
    return { handled, batchSize: this.options.batchSize }
  }

  /** Claims one batch of due messages and tries each once (in turn: one SMTP connection). */
  async runBatch (): Promise<BatchOutcome> {
    const outcome: BatchOutcome = { sent: 0, failed: 0, dead: 0, latenciesMs: [] }
    for (const row of await this.queue.claim(this.options.batchSize)) {
      const result = await this.attempt(row)
      outcome[result.kind]++
      this.totals[result.kind]++
      if (result.kind === 'sent') outcome.latenciesMs.push(result.latencyMs)
    }
    return outcome
  }

  private async attempt (row: ClaimedMessage): Promise<{ kind: 'sent'; latencyMs: number } | { kind: 'failed' | 'dead' }> {
    let secretForScrub: string | null = null
    try {
      const rendered = this.outbox.render(row)
      secretForScrub = linkSecretOf(rendered)
      await this.transport.send({ ...rendered, to: row.recipient })
    } catch (error) {
      const lastError = describeError(error, secretForScrub)
      const kind = await this.queue.failed(row, lastError)
      if (kind === 'dead') {
        // Parked for an admin to see; its secret is useless from now on.
        this.options.log.warn({ messageId: row.id, attempts: row.attempts, error: lastError }, 'mail delivery: message dead, no more attempts')
      } else {
        this.options.log.warn({ messageId: row.id, attempts: row.attempts, error: lastError }, 'mail delivery: attempt failed')
      }
      return { kind }
    }
    await this.queue.delivered([row])
    return { kind: 'sent', latencyMs: this.options.now() - row.createdAt.getTime() }
  }
}

/** The token in a rendered message's link, so an error that echoes the message cannot carry it into the row or the log. */
function linkSecretOf (rendered: RenderedEmail): string | null {
  const match = /[#?&]token=([^&\s"<]+)/.exec(rendered.text)
  return match ? decodeURIComponent(match[1]!) : null
}
