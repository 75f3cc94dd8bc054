import { randomBytes, randomUUID } from 'node:crypto'
import { Prisma, type PrismaClient, type WebhookEndpoint } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { seal, unseal } from '../../shared/derived-keys.js'
import { decodeCursor, encodeCursor, isCreatedCursor } from '../../shared/pagination.js'
import type { ClaimedRow, DeliveryQueue } from '../../shared/delivery-queue.js'
import type { DeliveryStatus, DeliveryView, WebhookPatch, WebhookRegistration, WebhookView } from './schemas.js'

/**
 * The webhook endpoints an admin registers (DESIGN §3.18), and what the
 * admin API shows of their deliveries. The deliveries themselves are
 * written by a trigger on audit_events, in the transaction of the event
 * (migration 20261207000000_webhooks), and sent by webhook-delivery.ts.
 */

export type UrlCheck = (url: string) => Promise<{ ok: true } | { ok: false; reason: string }>

export interface WebhooksOptions {
  secretKey: Buffer
  /** Refuses URLs webhooks may not reach (destinations.ts), at registration and at every change. */
  checkUrl: UrlCheck
  now: () => number
  /** How long a rotated secret keeps signing beside the new one. */
  previousSecretTtlMs?: number
}

/** Events one replay may queue: a larger range is refused, to be split. */
export const REPLAY_MAX_EVENTS = 100_000
const ATTEMPT_LOG_LENGTH = 20
const PREVIOUS_SECRET_TTL_MS = 24 * 3600 * 1000

interface Actor {
  id: string
  ip?: string | undefined
}

/** A Standard Webhooks secret: whsec_ and 32 random bytes in base64. */
function newSecret (): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/** The webhook-id of an event's deliveries: stable across attempts, retries and replays, for receivers' deduplication. */
export function webhookMessageId (eventId: bigint | string): string {
  return `evt_${eventId.toString()}`
}

export class Webhooks {
  constructor (
    private readonly db: PrismaClient,
    private readonly queue: Pick<DeliveryQueue<ClaimedRow>, 'requeue'>,
    private readonly options: WebhooksOptions
  ) {}

  /** The secrets an endpoint signs with now: its current one, and the one before a recent rotation. */
  signingSecrets (row: { id: string; secretEncrypted: Uint8Array; previousSecretEncrypted: Uint8Array | null; previousSecretExpiresAt: Date | null }): string[] {
    const secrets = [this.open(row.id, row.secretEncrypted)]
    if (row.previousSecretEncrypted && row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > this.options.now()) {
      secrets.push(this.open(row.id, row.previousSecretEncrypted))
    }
    return secrets
  }

  async create (input: WebhookRegistration, actor: Actor): Promise<{ webhook: WebhookView; secret: string }> {
    await this.checkUrl(input.url)
    const id = randomUUID()
    const secret = newSecret()
    const row = await this.db.$transaction(async (tx) => {
      const created = await tx.webhookEndpoint.create({
        data: {
          id,
          url: input.url,
          events: input.events,
          description: input.description ?? null,
          secretEncrypted: this.sealSecret(id, secret),
          createdBy: actor.id,
        },
      })
      await recordAuditEvent(tx, { type: 'webhook_created', actorId: actor.id, ip: actor.ip, details: { webhookId: id, url: input.url, events: input.events } })
      return created
    })
    return { webhook: view(row), secret }
  }

  async list (): Promise<WebhookView[]> {
    return (await this.db.webhookEndpoint.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(view)
  }

  async get (id: string): Promise<WebhookView> {
    return view(await this.row(id))
  }

  async update (id: string, patch: WebhookPatch, actor: Actor): Promise<WebhookView> {
    if (patch.url !== undefined) await this.checkUrl(patch.url)
    const row = await this.db.$transaction(async (tx) => {
      await existing(tx, id)
      const updated = await tx.webhookEndpoint.update({
        where: { id },
        data: {
          ...(patch.url !== undefined ? { url: patch.url } : {}),
          ...(patch.events !== undefined ? { events: patch.events } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          // Enabling again starts with a clean record: failing_since counts from the next failure.
          ...(patch.enabled === true ? { enabled: true, disabledReason: null, failingSince: null } : {}),
          ...(patch.enabled === false ? { enabled: false, disabledReason: 'disabled by an admin' } : {}),
          updatedAt: new Date(this.options.now()),
        },
      })
      await recordAuditEvent(tx, { type: 'webhook_updated', actorId: actor.id, ip: actor.ip, details: { webhookId: id, fields: Object.keys(patch) } })
      return updated
    })
    return view(row)
  }

  /** A new secret, shown once; the old one signs beside it for a day so receivers can switch without losing deliveries. */
  async rotateSecret (id: string, actor: Actor): Promise<{ webhook: WebhookView; secret: string }> {
    const secret = newSecret()
    const row = await this.db.$transaction(async (tx) => {
      // One statement reads the current secret and moves it aside, so concurrent rotations queue on the row
      // and each one's "previous" is the secret the one before it handed out.
      const now = new Date(this.options.now())
      const rotated = await tx.$executeRaw`
        UPDATE webhook_endpoints
           SET previous_secret_encrypted = secret_encrypted, secret_encrypted = ${this.sealSecret(id, secret)},
               previous_secret_expires_at = ${new Date(now.getTime() + (this.options.previousSecretTtlMs ?? PREVIOUS_SECRET_TTL_MS))},
               updated_at = ${now}
         WHERE id = ${id}::uuid`
      if (rotated === 0) throw new DomainError('webhook_not_found', 'no webhook has this id')
      const updated = await existing(tx, id)
      await recordAuditEvent(tx, { type: 'webhook_secret_rotated', actorId: actor.id, ip: actor.ip, details: { webhookId: id } })
      return updated
    })
    return { webhook: view(row), secret }
  }

  /** Deletes an endpoint and its deliveries (undelivered ones are dropped). */
  async delete (id: string, actor: Actor): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const deleted = await tx.webhookEndpoint.deleteMany({ where: { id } })
      if (deleted.count === 0) throw new DomainError('webhook_not_found', 'no webhook has this id')
      await recordAuditEvent(tx, { type: 'webhook_deleted', actorId: actor.id, ip: actor.ip, details: { webhookId: id } })
    })
  }

  /** An endpoint's deliveries, newest first, each with its last attempts. */
  async deliveries (id: string, input: { status?: DeliveryStatus | undefined; limit: number; cursor?: string | undefined }): Promise<{ items: DeliveryView[]; nextCursor: string | null }> {
    await this.row(id)
    const after = input.cursor ? decodeCursor(input.cursor, isCreatedCursor) : undefined
    const conditions = [Prisma.sql`d.endpoint_id = ${id}::uuid`]
    if (input.status === 'delivered') conditions.push(Prisma.sql`d.delivered_at IS NOT NULL`)
    if (input.status === 'dead') conditions.push(Prisma.sql`d.dead_at IS NOT NULL`)
    if (input.status === 'pending') conditions.push(Prisma.sql`d.delivered_at IS NULL AND d.dead_at IS NULL`)
    if (after) conditions.push(Prisma.sql`(d.created_at, d.id) < (${new Date(after.at)}, ${after.id}::uuid)`)
    const rows = await this.selectDeliveries(Prisma.join(conditions, ' AND '), input.limit + 1)
    const items = rows.slice(0, input.limit).map(deliveryView)
    const last = rows.length > input.limit ? rows[input.limit - 1] : undefined
    return { items, nextCursor: last ? encodeCursor({ at: last.createdAt.toISOString(), id: last.id }) : null }
  }

  /**
   * Makes a delivery due now with a fresh budget of attempts (the same
   * webhook-id); a delivered one is sent again. A disabled endpoint's
   * delivery waits until the endpoint is enabled.
   */
  async retry (id: string, deliveryId: string): Promise<DeliveryView> {
    await this.row(id)
    const requeued = await this.queue.requeue(Prisma.sql`id = ${deliveryId}::uuid AND endpoint_id = ${id}::uuid`, { redeliver: true })
    if (requeued === 0) throw new DomainError('delivery_not_found', 'this webhook has no delivery with this id')
    return this.delivery(id, deliveryId)
  }

  /**
   * Queues again every event of the endpoint's types in [since, until): new
   * deliveries of old events, each with the event's webhook-id.
   */
  async replay (id: string, range: { since: Date; until: Date }, actor: Actor): Promise<number> {
    if (range.until.getTime() <= range.since.getTime()) throw new DomainError('bad_request', 'until must be after since')
    return this.db.$transaction(async (tx) => {
      const endpoint = await existing(tx, id)
      const events = endpoint.events ?? []
      const matches = events.includes('*') ? Prisma.empty : Prisma.sql`AND e.type = ANY (${events}::text[])`
      const [{ count }] = await tx.$queryRaw<[{ count: bigint }]>`
        SELECT count(*) AS count FROM audit_events e WHERE e.at >= ${range.since} AND e.at < ${range.until} ${matches}`
      if (count > BigInt(REPLAY_MAX_EVENTS)) {
        throw new DomainError('replay_too_large', `the range holds ${count} events; replay at most ${REPLAY_MAX_EVENTS} at once (narrow since/until)`)
      }
      const now = new Date(this.options.now())
      const queued = await tx.$executeRaw`
        INSERT INTO webhook_deliveries (endpoint_id, event_id, created_at, next_attempt_at)
        SELECT ${id}::uuid, e.id, ${now}, ${now} FROM audit_events e
         WHERE e.at >= ${range.since} AND e.at < ${range.until} ${matches}
         ORDER BY e.id`
      await recordAuditEvent(tx, {
        type: 'webhook_replayed',
        actorId: actor.id,
        ip: actor.ip,
        details: { webhookId: id, since: range.since.toISOString(), until: range.until.toISOString(), queued },
      })
      return queued
    })
  }

  private async delivery (id: string, deliveryId: string): Promise<DeliveryView> {
    const rows = await this.selectDeliveries(Prisma.sql`d.id = ${deliveryId}::uuid AND d.endpoint_id = ${id}::uuid`, 1)
    if (rows.length === 0) throw new DomainError('delivery_not_found', 'this webhook has no delivery with this id')
    return deliveryView(rows[0]!)
  }

  /** Deliveries as the admin API shows them, each with its last attempts, newest first. */
  private selectDeliveries (where: Prisma.Sql, limit: number): Promise<DeliveryRow[]> {
    return this.db.$queryRaw<DeliveryRow[]>`
      SELECT d.id, d.event_id AS "eventId", e.type AS "eventType", d.attempts, d.next_attempt_at AS "nextAttemptAt",
             d.last_status AS "lastStatus", d.last_latency_ms AS "lastLatencyMs", d.last_error AS "lastError",
             d.created_at AS "createdAt", d.delivered_at AS "deliveredAt", d.dead_at AS "deadAt",
             COALESCE((SELECT json_agg(json_build_object('attempt', l.attempt, 'at', l.at, 'status', l.status, 'latencyMs', l.latency_ms, 'error', l.error) ORDER BY l.id DESC)
                         FROM (SELECT * FROM webhook_attempts WHERE delivery_id = d.id ORDER BY id DESC LIMIT ${ATTEMPT_LOG_LENGTH}) l), '[]') AS "attemptLog"
        FROM webhook_deliveries d LEFT JOIN audit_events e ON e.id = d.event_id
       WHERE ${where}
       ORDER BY d.created_at DESC, d.id DESC
       LIMIT ${limit}`
  }

  private async row (id: string): Promise<WebhookEndpoint> {
    return existing(this.db, id)
  }

  private async checkUrl (url: string): Promise<void> {
    const checked = await this.options.checkUrl(url)
    if (!checked.ok) throw new DomainError('webhook_url_refused', checked.reason)
  }

  private sealSecret (id: string, secret: string): Uint8Array<ArrayBuffer> {
    return seal(this.options.secretKey, Buffer.from(secret), `webhook:${id}`)
  }

  private open (id: string, sealed: Uint8Array): string {
    return unseal(this.options.secretKey, sealed, `webhook:${id}`).toString('utf8')
  }
}

/** The endpoint `id`, or webhook_not_found. */
async function existing (db: PrismaClient | Prisma.TransactionClient, id: string): Promise<WebhookEndpoint> {
  const row = await db.webhookEndpoint.findUnique({ where: { id } })
  if (!row) throw new DomainError('webhook_not_found', 'no webhook has this id')
  return row
}

interface DeliveryRow {
  id: string
  eventId: bigint
  eventType: string | null
  attempts: number
  nextAttemptAt: Date | null
  lastStatus: number | null
  lastLatencyMs: number | null
  lastError: string | null
  createdAt: Date
  deliveredAt: Date | null
  deadAt: Date | null
  attemptLog: { attempt: number; at: string; status: number | null; latencyMs: number; error: string | null }[]
}

function deliveryView (row: DeliveryRow): DeliveryView {
  return {
    ...row,
    eventId: row.eventId.toString(),
    webhookId: webhookMessageId(row.eventId),
    status: row.deliveredAt ? 'delivered' : row.deadAt ? 'dead' : 'pending',
    attemptLog: row.attemptLog.map((attempt) => ({ ...attempt, at: new Date(attempt.at) })),
  }
}

function view (row: WebhookEndpoint): WebhookView {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    failingSince: row.failingSince,
    createdBy: row.createdBy,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  }
}
