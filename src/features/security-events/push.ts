import type { Dispatcher } from 'undici'
import { request } from 'undici'
import type { PrismaClient } from '../../generated/prisma/client.js'
import { DeliveryQueue, QueueWorker, describeError, type ClaimedRow, type WorkerLog } from '../../shared/delivery-queue.js'
import { assertDeliverable } from '../webhooks/destinations.js'
import { SET_MEDIA_TYPE } from './events.js'
import type { QueuedEvent, SetSigner } from './sets.js'

/**
 * RFC 8935 push delivery: a worker on every instance claims due rows of
 * enabled push streams (shared/delivery-queue.ts: SKIP LOCKED under a lease,
 * so two instances never push one row at once), POSTs each SET to its
 * stream's endpoint as application/secevent+jwt with the receiver's
 * Authorization header, and reads the answer as RFC 8935 §2.2-2.3 says:
 * 202 (any 2xx) accepted; 400 with `{err, description}` the receiver
 * refused this SET, which no retry will change (dead at once, its error
 * kept); anything else a failed attempt, retried with backoff until dead.
 * Connections go through the webhook SSRF guard (features/webhooks/
 * destinations.ts): only public addresses, checked at every connection,
 * unless WEBHOOK_ALLOW_PRIVATE_NETWORKS; redirects are never followed.
 */

export interface PushOptions {
  maxAttempts: number
  retryBaseSeconds: number
  batchSize: number
  /** Longer than a whole batch's timeouts. */
  leaseSeconds: number
  /** Bounds each attempt (headers and body). */
  timeoutMs: number
  allowPrivateNetworks: boolean
  now: () => number
  log: WorkerLog
}

type ClaimedPush = ClaimedRow & QueuedEvent & {
  streamId: string
  audience: string
  endpointUrl: string
  authorizationHeaderEncrypted: Uint8Array | null
}

const PUSH_QUEUE = {
  table: 'security_events',
  doneColumn: 'delivered_at',
  columns: `q.event, q.subject, q.claims, q.txn, q.stream_id::text AS "streamId", s.audience, s.endpoint_url AS "endpointUrl",
            s.authorization_header_encrypted AS "authorizationHeaderEncrypted"`,
  join: 'JOIN ssf_streams s ON s.id = q.stream_id AND s.delivery_method = \'push\' AND s.status = \'enabled\'',
}

/** The most of a receiver's answer read: an error object is small. */
const MAX_ANSWER_BYTES = 16 * 1024

export interface PushOutcome {
  delivered: number
  failed: number
  dead: number
}

export class SetPusher {
  readonly totals: PushOutcome = { delivered: 0, failed: 0, dead: 0 }
  private readonly queue: DeliveryQueue<ClaimedPush>
  private readonly worker: QueueWorker

  constructor (
    private readonly db: PrismaClient,
    private readonly signer: SetSigner,
    private readonly authorizationHeader: (streamId: string, sealed: Uint8Array | null) => string | null,
    private readonly agent: Dispatcher,
    private readonly options: PushOptions
  ) {
    this.queue = new DeliveryQueue(db, PUSH_QUEUE, options)
    this.worker = new QueueWorker('security event push', () => this.logged(), options.log)
  }

  start (intervalMs: number): void {
    this.worker.start(intervalMs)
  }

  kick (): void {
    this.worker.kick()
  }

  /** Resolves when the batch in flight (if any) is done. */
  idle (): Promise<void> {
    return this.worker.idle()
  }

  async stop (): Promise<void> {
    await this.worker.stop()
  }

  private async logged (): Promise<{ handled: number; batchSize: number }> {
    const outcome = await this.runBatch()
    const handled = outcome.delivered + outcome.failed + outcome.dead
    if (handled > 0) this.options.log.info({ ...outcome, totals: this.totals }, 'security event push: batch done')
    return { handled, batchSize: this.options.batchSize }
  }

  /** Claims one batch of due SETs of push streams and tries each once, concurrently. */
  async runBatch (): Promise<PushOutcome> {
    const outcome: PushOutcome = { delivered: 0, failed: 0, dead: 0 }
    const rows = await this.queue.claim(this.options.batchSize)
    const results = await Promise.all(rows.map((row) => this.attempt(row)))
    for (const result of results) {
      outcome[result]++
      this.totals[result]++
    }
    return outcome
  }

  private async attempt (row: ClaimedPush): Promise<keyof PushOutcome> {
    let authorization: string | null = null
    try {
      const set = this.signer.sign(row, row.audience)
      if (set === null) return await this.refused(row, `no SET can be made of event ${row.event}`)
      assertDeliverable(row.endpointUrl, { allowPrivateNetworks: this.options.allowPrivateNetworks })
      authorization = this.authorizationHeader(row.streamId, row.authorizationHeaderEncrypted)
      const response = await request(row.endpointUrl, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': SET_MEDIA_TYPE,
          accept: 'application/json',
          ...(authorization === null ? {} : { authorization }),
        },
        body: set,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
      })
      const answer = await readAnswer(response.body)
      if (response.statusCode >= 200 && response.statusCode < 300) {
        await this.queue.delivered([row])
        return 'delivered'
      }
      const error = setError(answer)
      // RFC 8935 §2.3: the receiver read the SET and refused it; sending it again changes nothing.
      if (response.statusCode === 400 && error !== null) return await this.refused(row, `refused by the receiver (${error})`)
      return await this.failed(row, `the receiver answered ${response.statusCode}${error ? ` (${error})` : ''}`)
    } catch (error) {
      return this.failed(row, describeError(error, authorization))
    }
  }

  /** Parks a row at once, whatever its attempts (the receiver refused the SET itself). */
  private async refused (row: ClaimedPush, reason: string): Promise<'dead'> {
    await this.db.$executeRaw`
      UPDATE security_events SET dead_at = ${new Date(this.options.now())}, next_attempt_at = NULL, last_error = ${reason.slice(0, 500)}
       WHERE id = ${row.id}::uuid AND attempts = ${row.attempts} AND delivered_at IS NULL AND dead_at IS NULL`
    this.options.log.warn({ setId: row.id, streamId: row.streamId, error: reason }, 'security event push: SET refused, not sent again')
    return 'dead'
  }

  private async failed (row: ClaimedPush, reason: string): Promise<'failed' | 'dead'> {
    const kind = await this.queue.failed(row, reason)
    this.options.log.warn({ setId: row.id, streamId: row.streamId, attempts: row.attempts, error: reason }, kind === 'dead' ? 'security event push: SET dead, no more attempts' : 'security event push: attempt failed')
    return kind
  }
}

async function readAnswer (body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy?.()
      break
    }
    chunks.push(Buffer.from(chunk))
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** RFC 8935 §2.3's `{err, description}`, as one line; null when the answer is not one. */
function setError (text: string): string | null {
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed !== 'object' || parsed === null) return null
    const { err, description } = parsed as { err?: unknown; description?: unknown }
    if (typeof err !== 'string') return null
    return `${err.slice(0, 64)}${typeof description === 'string' ? `: ${description.slice(0, 200)}` : ''}`
  } catch {
    return null
  }
}
