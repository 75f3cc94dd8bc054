import { Prisma, type PrismaClient, type SsfStream } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { DeliveryQueue, type ClaimedRow, type WorkerLog } from '../../shared/delivery-queue.js'
import { isUuid } from '../../shared/formats.js'
import type { PollRequest, PollResponse } from './schemas.js'
import type { QueuedEvent, SetSigner } from './sets.js'

/**
 * RFC 8936 poll delivery. A poll claims due rows of its stream through the
 * delivery queue (shared/delivery-queue.ts), each under a lease: a SET
 * handed to the receiver is not handed out again while the receiver may
 * still acknowledge it, and comes back due once the lease ends unacknowledged
 * (a receiver that died holding it, a response lost). An acknowledgement
 * marks the row delivered; a setErr marks it dead, with the receiver's
 * reason. Two instances answering polls of one stream claim disjoint rows
 * (FOR UPDATE SKIP LOCKED): a SET reaches the receiver twice only when its
 * lease ran out unacknowledged.
 *
 * Long polling (returnImmediately false, RFC 8936 §2.4): a poll that finds
 * nothing waits, up to `longPollMs`. One check per instance, every
 * `checkIntervalMs` while any poll waits, asks which waiting streams have a
 * row due (written by any instance's transaction) and wakes their polls, so
 * a poll answers within about that interval of the event's commit.
 */

export interface PollerOptions {
  /** How long a SET handed out waits for its acknowledgement before it is due again. */
  leaseSeconds: number
  /** The longest a poll waits for an event before it answers an empty set. */
  longPollMs: number
  /** How often waiting polls are checked for due rows. */
  checkIntervalMs: number
  /** SETs per answer when the receiver names no maxEvents. */
  defaultMaxEvents: number
  now: () => number
  log: WorkerLog
}

type ClaimedEvent = ClaimedRow & QueuedEvent

/** The delivery queue as a poll sees it: one stream's rows (the `where` of each claim). */
const POLL_QUEUE = {
  table: 'security_events',
  doneColumn: 'delivered_at',
  columns: 'q.event, q.subject, q.claims, q.txn',
}

export class SetPoller {
  private readonly queue: DeliveryQueue<ClaimedEvent>
  private readonly waiting = new Map<string, Set<(outcome: WakeUp) => void>>()
  private timer: NodeJS.Timeout | undefined
  private checking = false
  private closed = false

  constructor (
    private readonly db: PrismaClient,
    private readonly signer: SetSigner,
    private readonly options: PollerOptions
  ) {
    // Poll rows never fail: unacknowledged, they come back after the lease; refused, they are dead at once.
    this.queue = new DeliveryQueue(db, POLL_QUEUE, { maxAttempts: Number.MAX_SAFE_INTEGER, retryBaseSeconds: options.leaseSeconds, leaseSeconds: options.leaseSeconds, now: options.now })
  }

  /** Answers one poll of `stream` (its receiver already checked). `signal` ends a wait early (the client went away). */
  async poll (stream: SsfStream, request: PollRequest, signal: AbortSignal): Promise<PollResponse> {
    await this.acknowledge(stream.id, request)
    const maxEvents = request.maxEvents ?? this.options.defaultMaxEvents
    if (maxEvents === 0) return { sets: {} }
    const deadline = Date.now() + (request.returnImmediately === true ? 0 : this.options.longPollMs)
    let claimed: ClaimedEvent[] = []
    for (;;) {
      claimed = await this.claim(stream.id, maxEvents)
      if (claimed.length > 0 || Date.now() >= deadline || signal.aborted || this.closed) break
      const outcome = await this.wait(stream.id, deadline, signal)
      if (signal.aborted) return { sets: {} }
      // Deleted meanwhile (on any instance): the receiver learns it now, not at the end of its wait.
      if (outcome === 'gone') throw new DomainError('stream_not_found', 'the stream was deleted')
    }
    const sets: Record<string, string> = {}
    const unsendable: ClaimedEvent[] = []
    for (const row of claimed) {
      const set = this.signer.sign(row, stream.audience)
      if (set === null) unsendable.push(row)
      else sets[row.id] = set
    }
    if (unsendable.length > 0) await this.markDead(stream.id, unsendable.map((row) => ({ jti: row.id, error: `no SET can be made of event ${row.event}` })))
    const moreAvailable = claimed.length === maxEvents && (await this.hasDue(stream.id))
    return { sets, ...(moreAvailable ? { moreAvailable } : {}) }
  }

  /** Wakes every waiting poll (shutdown): each answers what it has. */
  close (): void {
    this.closed = true
    clearInterval(this.timer)
    this.timer = undefined
    for (const wakers of this.waiting.values()) for (const wake of wakers) wake('closing')
    this.waiting.clear()
  }

  /** RFC 8936 §2.4: `ack` marks SETs delivered, `setErrs` marks them refused (dead, not sent again). Only the stream's own. */
  private async acknowledge (streamId: string, request: PollRequest): Promise<void> {
    const now = new Date(this.options.now())
    const acked = [...new Set((request.ack ?? []).map((jti) => jti.toLowerCase()).filter(isUuid))]
    if (acked.length > 0) {
      await this.db.$executeRaw`
        UPDATE security_events SET delivered_at = ${now}, next_attempt_at = NULL, last_error = NULL
         WHERE stream_id = ${streamId}::uuid AND id = ANY (${acked}::uuid[]) AND delivered_at IS NULL AND dead_at IS NULL`
    }
    const errors = Object.entries(request.setErrs ?? {})
      .map(([jti, error]) => ({ jti: jti.toLowerCase(), error: `${error.err}${error.description ? `: ${error.description}` : ''}`.slice(0, 500) }))
      .filter(({ jti }) => isUuid(jti))
    if (errors.length > 0) await this.markDead(streamId, errors)
  }

  /** Rows never to be sent again, with why. */
  private async markDead (streamId: string, errors: { jti: string; error: string }[]): Promise<void> {
    await this.db.$executeRaw`
      UPDATE security_events AS e SET dead_at = ${new Date(this.options.now())}, next_attempt_at = NULL, last_error = r.error
        FROM unnest(${errors.map((e) => e.jti)}::uuid[], ${errors.map((e) => e.error)}::text[]) AS r(id, error)
       WHERE e.stream_id = ${streamId}::uuid AND e.id = r.id AND e.delivered_at IS NULL AND e.dead_at IS NULL`
  }

  /** Due rows of an enabled stream, oldest first, each leased. */
  private claim (streamId: string, limit: number): Promise<ClaimedEvent[]> {
    return this.queue.claim(limit, {
      where: Prisma.sql`q.stream_id = ${streamId}::uuid AND EXISTS (SELECT 1 FROM ssf_streams s WHERE s.id = ${streamId}::uuid AND s.status = 'enabled')`,
    })
  }

  private async hasDue (streamId: string): Promise<boolean> {
    const rows = await this.db.$queryRaw<{ due: boolean }[]>`
      SELECT EXISTS (SELECT 1 FROM security_events WHERE stream_id = ${streamId}::uuid AND next_attempt_at <= ${new Date(this.options.now())}) AS due`
    return rows[0]?.due === true
  }

  /** Resolves when a row of the stream may be due, the stream is gone, at the deadline, or when the poll is abandoned. */
  private wait (streamId: string, deadline: number, signal: AbortSignal): Promise<WakeUp> {
    return new Promise((resolve) => {
      let wakers = this.waiting.get(streamId)
      if (!wakers) this.waiting.set(streamId, (wakers = new Set()))
      const set = wakers
      const done = (outcome: WakeUp) => {
        clearTimeout(timeout)
        signal.removeEventListener('abort', aborted)
        set.delete(done)
        if (set.size === 0 && this.waiting.get(streamId) === set) this.waiting.delete(streamId)
        resolve(outcome)
      }
      const aborted = () => done('aborted')
      const timeout = setTimeout(() => done('timeout'), Math.max(0, deadline - Date.now()))
      signal.addEventListener('abort', aborted, { once: true })
      set.add(done)
      this.startChecking()
    })
  }

  private startChecking (): void {
    if (this.timer || this.closed) return
    this.timer = setInterval(() => {
      if (this.waiting.size === 0) {
        clearInterval(this.timer)
        this.timer = undefined
        return
      }
      if (this.checking) return
      this.checking = true
      this.check()
        .catch((error: unknown) => this.options.log.warn({ err: error }, 'security events: checking waiting polls failed'))
        .finally(() => {
          this.checking = false
        })
    }, this.options.checkIntervalMs)
    this.timer.unref()
  }

  /** One query for every stream with a waiting poll: those with a row due now, or deleted, are woken. */
  private async check (): Promise<void> {
    const ids = [...this.waiting.keys()]
    if (ids.length === 0) return
    const woken = await this.db.$queryRaw<{ stream_id: string; gone: boolean }[]>`
      SELECT w.id::text AS stream_id, s.id IS NULL AS gone
        FROM unnest(${ids}::uuid[]) AS w(id)
        LEFT JOIN ssf_streams s ON s.id = w.id
       WHERE s.id IS NULL
          OR (s.status = 'enabled' AND EXISTS (
                SELECT 1 FROM security_events q WHERE q.stream_id = w.id AND q.next_attempt_at <= ${new Date(this.options.now())}))`
    for (const { stream_id: id, gone } of woken) for (const wake of [...(this.waiting.get(id) ?? [])]) wake(gone ? 'gone' : 'due')
  }
}

/** Why a waiting poll goes on. */
type WakeUp = 'due' | 'gone' | 'timeout' | 'aborted' | 'closing'
