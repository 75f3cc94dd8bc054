import { Webhook } from 'standardwebhooks'
import { request, type Dispatcher } from 'undici'
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js'
import { AUDIT_EVENT_VIEW_COLUMNS, AUDIT_EVENT_VIEW_JOINS, auditEventView, recordAuditEvent, type AuditEventRow } from '../../shared/audit.js'
import { DeliveryQueue, QueueWorker, describeError, type ClaimedRow, type WorkerLog } from '../../shared/delivery-queue.js'
import { assertDeliverable } from './destinations.js'
import { webhookMessageId, type Webhooks } from './webhooks.js'

/**
 * The webhook worker (DESIGN §3.18): every instance runs one; they share the
 * deliveries through the database, on the delivery queue the email outbox
 * uses (shared/delivery-queue.ts). A batch is sent concurrently over
 * kept-alive connections; its outcomes are written in a few statements.
 *
 * Standard Webhooks 1.0: the body is `{type, timestamp, data}`, frozen at
 * the first attempt; `webhook-id` names the event (the same on every attempt,
 * retry and replay); `webhook-timestamp` and `webhook-signature` are made
 * anew for each attempt, so a receiver's timestamp tolerance never refuses a
 * late retry, and a captured request cannot be replayed later. A 2xx is a
 * delivery; anything else (3xx included: redirects are never followed) is a
 * failed attempt.
 */

export type DeliveryResult = 'delivered' | 'failed' | 'dead'

export interface WebhookDeliveryOptions {
  maxAttempts: number
  retryBaseSeconds: number
  /** Deliveries claimed per batch, and how many of them are in flight at once. */
  batchSize: number
  concurrency: number
  /** Longer than a whole batch can take (timeouts × batchSize / concurrency). */
  leaseSeconds: number
  /** One attempt's limit for connecting, for the answer's headers and for each pause in its body (the agent's timeouts). */
  attemptTimeoutMs: number
  /** An endpoint failing this long without a success is disabled. */
  disableAfterMs: number
  allowPrivateNetworks: boolean
  /** Sends every request: destinations.ts's guarded agent. */
  dispatcher: Dispatcher
  now: () => number
  log: WorkerLog
  /** Told of each attempt's result (metrics). */
  onResult?: (result: DeliveryResult) => void
  /** Tells an endpoint's owner it was disabled, inside the transaction that disables it. */
  notifyDisabled: (tx: Prisma.TransactionClient, endpoint: DisabledEndpoint) => Promise<void>
}

export interface DisabledEndpoint {
  id: string
  url: string
  createdBy: string | null
  failingSince: Date
}

interface ClaimedDelivery extends ClaimedRow {
  endpointId: string
  eventId: bigint
  body: string | null
  url: string
  secretEncrypted: Uint8Array
  previousSecretEncrypted: Uint8Array | null
  previousSecretExpiresAt: Date | null
}

interface AttemptOutcome {
  row: ClaimedDelivery
  body: string | null
  at: Date
  status: number | null
  latencyMs: number
  /** null when delivered. */
  error: string | null
  /** Nothing another attempt could change (the event is gone). */
  final?: boolean
}

const WEBHOOK_QUEUE = {
  table: 'webhook_deliveries',
  doneColumn: 'delivered_at',
  columns: `q.endpoint_id AS "endpointId", q.event_id AS "eventId", q.body, w.url, w.secret_encrypted AS "secretEncrypted",
            w.previous_secret_encrypted AS "previousSecretEncrypted", w.previous_secret_expires_at AS "previousSecretExpiresAt"`,
  join: 'JOIN webhook_endpoints w ON w.id = q.endpoint_id',
}

/** Tries at writing a batch's outcomes before leaving them to the lease. */
const RECORD_ATTEMPTS = 5

/** A body never carries more than this much of a receiver's answer into last_error. */
const ANSWER_EXCERPT_LENGTH = 200

export function webhookQueue (db: PrismaClient, options: { maxAttempts: number; retryBaseSeconds: number; leaseSeconds: number; now: () => number }) {
  return new DeliveryQueue<ClaimedDelivery>(db, WEBHOOK_QUEUE, options)
}

export class WebhookDelivery {
  /** Totals since start. */
  readonly totals = { delivered: 0, failed: 0, dead: 0 }
  private readonly queue: DeliveryQueue<ClaimedDelivery>
  private readonly worker: QueueWorker

  constructor (
    private readonly db: PrismaClient,
    private readonly webhooks: Webhooks,
    private readonly options: WebhookDeliveryOptions
  ) {
    this.queue = webhookQueue(db, options)
    this.worker = new QueueWorker('webhook delivery', async () => ({ handled: await this.runBatch(), batchSize: options.batchSize }), options.log)
  }

  start (intervalMs: number): void {
    this.worker.start(intervalMs)
  }

  kick (): void {
    this.worker.kick()
  }

  /** One batch, its outcomes (and those of a timer's batch running meanwhile) written before it resolves: tests. */
  async deliverOnce (): Promise<number> {
    const handled = await this.runBatch()
    await this.idle()
    return handled
  }

  /** Resolves when the batch in flight is done and recorded (tests). */
  async idle (): Promise<void> {
    await this.worker.idle()
    await this.recording
  }

  async stop (): Promise<void> {
    await this.worker.stop()
    await this.recording
  }

  /**
   * Claims one batch (endpoints enabled only) and attempts each delivery
   * once; the number handled. The batch's outcomes are written while the
   * next batch is claimed and sent (one recording in flight at a time), and
   * a recording that fails is tried again: its deliveries were sent, and
   * losing their outcomes would send them again once their lease ended.
   */
  async runBatch (): Promise<number> {
    const rows = await this.queue.claim(this.options.batchSize, { where: Prisma.sql`w.enabled` })
    if (rows.length === 0) {
      await this.recording
      return 0
    }
    let bodies: Map<string, string>
    try {
      bodies = await this.bodiesOf(rows)
    } catch (error) {
      await this.queue.release(rows).catch(() => {})
      throw error
    }
    const secrets = new Map<string, string[]>()
    const outcomes: AttemptOutcome[] = []
    let next = 0
    const lane = async () => {
      while (next < rows.length) {
        const row = rows[next++]!
        let signing = secrets.get(row.endpointId)
        if (!signing) secrets.set(row.endpointId, (signing = this.webhooks.signingSecrets({ ...row, id: row.endpointId })))
        outcomes.push(await this.attempt(row, bodies.get(row.id) ?? null, signing))
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, rows.length) }, lane))
    const previous = this.recording
    this.recording = previous.then(() => this.recordWithRetries(outcomes))
    await previous
    return rows.length
  }

  private recording: Promise<void> = Promise.resolve()

  private async recordWithRetries (outcomes: AttemptOutcome[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.record(outcomes)
        return
      } catch (error) {
        if (attempt >= RECORD_ATTEMPTS) {
          this.options.log.warn({ err: error, deliveries: outcomes.length }, 'webhook delivery: outcomes not recorded; the deliveries go again after their lease')
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
      }
    }
  }

  /** Each delivery's body: the frozen one of an earlier attempt, or built now from its audit event. */
  private async bodiesOf (rows: ClaimedDelivery[]): Promise<Map<string, string>> {
    const bodies = new Map<string, string>()
    const missing = rows.filter((row) => row.body === null)
    if (missing.length > 0) {
      const events = await this.db.$queryRaw<AuditEventRow[]>`
        SELECT ${Prisma.raw(AUDIT_EVENT_VIEW_COLUMNS)} FROM audit_events e ${Prisma.raw(AUDIT_EVENT_VIEW_JOINS)}
         WHERE e.id = ANY (${[...new Set(missing.map((row) => row.eventId.toString()))]}::bigint[])`
      const byId = new Map(events.map((event) => [event.id.toString(), event]))
      for (const row of missing) {
        const event = byId.get(row.eventId.toString())
        if (event) bodies.set(row.id, eventBody(event))
      }
    }
    for (const row of rows) if (row.body !== null) bodies.set(row.id, row.body)
    return bodies
  }

  private async attempt (row: ClaimedDelivery, body: string | null, secrets: string[]): Promise<AttemptOutcome> {
    const at = new Date(this.options.now())
    const started = performance.now()
    const outcome = (status: number | null, error: string | null, final = false): AttemptOutcome => ({
      row,
      body,
      at,
      status,
      latencyMs: Math.round(performance.now() - started),
      error,
      final,
    })
    if (body === null) return outcome(null, 'the event no longer exists (audit retention deleted it)', true)
    try {
      assertDeliverable(row.url, { allowPrivateNetworks: this.options.allowPrivateNetworks })
      const timestamp = new Date(this.options.now())
      const messageId = webhookMessageId(row.eventId)
      const signature = secrets.map((secret) => new Webhook(secret).sign(messageId, timestamp, body)).join(' ')
      const answer = await request(row.url, {
        method: 'POST',
        dispatcher: this.options.dispatcher,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'token-auth-webhooks/1',
          'webhook-id': messageId,
          'webhook-timestamp': Math.floor(timestamp.getTime() / 1000).toString(),
          'webhook-signature': signature,
        },
        body,
        // The agent bounds connecting, the answer's headers and each pause in its body (attemptTimeoutMs each).
      })
      if (answer.statusCode >= 200 && answer.statusCode < 300) {
        await answer.body.dump()
        return outcome(answer.statusCode, null)
      }
      const excerpt = (await answer.body.text().catch(() => '')).slice(0, ANSWER_EXCERPT_LENGTH)
      const where = answer.statusCode >= 300 && answer.statusCode < 400 ? ' (redirects are not followed)' : ''
      return outcome(answer.statusCode, `HTTP ${answer.statusCode}${where}${excerpt ? `: ${excerpt}` : ''}`)
    } catch (error) {
      return outcome(null, describeError(error))
    }
  }

  /** Writes a batch's outcomes: delivered rows in one statement, failures each, every attempt in the log, endpoints' health. */
  private async record (outcomes: AttemptOutcome[]): Promise<void> {
    const delivered = outcomes.filter((o) => o.error === null)
    await this.queue.delivered(
      delivered.map((o) => o.row),
      [
        { column: 'body', type: 'text', values: delivered.map((o) => o.body) },
        { column: 'last_status', type: 'int', values: delivered.map((o) => o.status) },
        { column: 'last_latency_ms', type: 'int', values: delivered.map((o) => o.latencyMs) },
      ]
    )
    this.count('delivered', delivered.length)
    const failedEndpoints = new Map<string, Date>()
    for (const o of outcomes) {
      if (o.error === null) continue
      const result = await this.queue.failed(o.row, o.error, {
        set: Prisma.sql`body = COALESCE(body, ${o.body}), last_status = ${o.status}, last_latency_ms = ${o.latencyMs}`,
        final: o.final ?? false,
      })
      this.count(result, 1)
      if (result === 'dead') this.options.log.warn({ deliveryId: o.row.id, endpointId: o.row.endpointId, attempts: o.row.attempts, error: o.error }, 'webhook delivery: dead, no more attempts')
      if (!failedEndpoints.has(o.row.endpointId)) failedEndpoints.set(o.row.endpointId, o.at)
    }
    // An endpoint deleted while its batch was in flight took its deliveries with it: their attempts are not logged.
    await this.db.$executeRaw`
      INSERT INTO webhook_attempts (delivery_id, attempt, at, status, latency_ms, error)
      SELECT a.* FROM unnest(${outcomes.map((o) => o.row.id)}::uuid[], ${outcomes.map((o) => o.row.attempts)}::int[],
                             ${outcomes.map((o) => o.at)}::timestamptz[], ${outcomes.map((o) => o.status)}::int[],
                             ${outcomes.map((o) => o.latencyMs)}::int[], ${outcomes.map((o) => o.error)}::text[])
               AS a(delivery_id, attempt, at, status, latency_ms, error)
       WHERE EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = a.delivery_id)`.catch((error: unknown) => {
        this.options.log.warn({ err: error }, 'webhook delivery: attempts of a batch not logged (an endpoint was deleted meanwhile)')
      })
    const healthy = [...new Set(delivered.map((o) => o.row.endpointId))]
    if (healthy.length > 0) {
      await this.db.$executeRaw`UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ANY (${healthy}::uuid[]) AND failing_since IS NOT NULL`
    }
    const failing = [...failedEndpoints].filter(([id]) => !healthy.includes(id))
    if (failing.length > 0) await this.recordFailing(failing)
  }

  /** Notes when each endpoint started failing, and disables those failing longer than allowed, telling their owners. */
  private async recordFailing (failing: [string, Date][]): Promise<void> {
    await this.db.$executeRaw`
      UPDATE webhook_endpoints w SET failing_since = f.at
        FROM unnest(${failing.map(([id]) => id)}::uuid[], ${failing.map(([, at]) => at)}::timestamptz[]) AS f(id, at)
       WHERE w.id = f.id AND w.failing_since IS NULL`
    const now = new Date(this.options.now())
    const cutoff = new Date(now.getTime() - this.options.disableAfterMs)
    const days = Math.round(this.options.disableAfterMs / 86_400_000)
    const reason = `every delivery failed for ${days} day${days === 1 ? '' : 's'}`
    await this.db.$transaction(async (tx) => {
      const disabled = await tx.$queryRaw<DisabledEndpoint[]>`
        UPDATE webhook_endpoints SET enabled = false, disabled_reason = ${reason}, updated_at = ${now}
         WHERE id = ANY (${failing.map(([id]) => id)}::uuid[]) AND enabled AND failing_since <= ${cutoff}
     RETURNING id, url, created_by::text AS "createdBy", failing_since AS "failingSince"`
      for (const endpoint of disabled) {
        // Its undelivered events are parked as dead: an admin retries or replays them after enabling it.
        await tx.$executeRaw`
          UPDATE webhook_deliveries SET dead_at = ${now}, next_attempt_at = NULL, last_error = 'the endpoint was disabled'
           WHERE endpoint_id = ${endpoint.id}::uuid AND delivered_at IS NULL AND dead_at IS NULL`
        await recordAuditEvent(tx, { type: 'webhook_disabled', details: { webhookId: endpoint.id, reason, failingSince: endpoint.failingSince.toISOString() } })
        await this.options.notifyDisabled(tx, endpoint)
        this.options.log.warn({ endpointId: endpoint.id, failingSince: endpoint.failingSince }, 'webhook delivery: endpoint disabled')
      }
    })
  }

  private count (result: DeliveryResult, n: number): void {
    this.totals[result] += n
    for (let i = 0; i < n; i++) this.options.onResult?.(result)
  }
}

/** The body of an event's deliveries: DESIGN §3.18's `{type, timestamp, data}`, data as GET /admin/audit-events shows it. */
export function eventBody (event: AuditEventRow): string {
  return JSON.stringify({ type: event.type, timestamp: event.at.toISOString(), data: auditEventView(event) })
}
