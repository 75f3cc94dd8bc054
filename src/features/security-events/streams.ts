import { randomUUID } from 'node:crypto'
import { Prisma, type PrismaClient, type SsfStream } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { seal, unseal } from '../../shared/derived-keys.js'
import { ABANDONED_STREAM_DAYS } from './catalogue.js'
import { EVENTS_SUPPORTED, eventsDelivered, POLL_METHOD, PUSH_METHOD, SESSION_REVOKED, VERIFICATION } from './events.js'
import type { DeliveryInput, StreamConfiguration, StreamCreateRequest, StreamStatus, StreamStatusValue, StreamUpdateRequest } from './schemas.js'

/**
 * The receivers' event streams (SSF 1.0 §8): created, read, changed and
 * deleted by their receiver only, a platform service authenticated with a
 * client_credentials token or an admin's API key (both with the `events`
 * scope). A receiver sees its own streams and no other: another's stream is
 * "not found", as a stream that does not exist.
 */

/** Who manages a stream: a confidential client acting for itself, or an admin through an API key. */
export type Receiver = { kind: 'client'; clientId: string } | { kind: 'admin'; userId: string }

/** The same lock the session-revoked trigger takes shared (migration 20261207000100_security_event_streams). */
const BACKLOG_LOCK = 4_242_018
/** Streams one receiver may hold (each queues a row per event). */
export const MAX_STREAMS_PER_RECEIVER = 50
/** SSF 1.0 §8.1.1: the least time between two verification requests of a stream. */
export const MIN_VERIFICATION_INTERVAL_SECONDS = 5
/** A margin for the clocks of receivers that lag, added to the backlog's reach. */
const BACKLOG_MARGIN_SECONDS = 60

export interface StreamsOptions {
  issuer: string
  /** Seals a push stream's Authorization header. */
  encryptionKey: Buffer
  /** The longest access-token lifetime: how far back a new stream's session-revoked backlog reaches. */
  accessTokenTtlSeconds: number
  /** Whether a push endpoint may be delivered to: null when it may, else why not (the webhook SSRF rules). */
  checkPushEndpoint: (url: string) => Promise<string | null>
  now: () => number
}

export class SsfStreams {
  constructor (
    private readonly db: PrismaClient,
    private readonly options: StreamsOptions
  ) {}

  /** The URL a poll stream's receiver polls (RFC 8936 §2, SSF 1.0 §6.1.2). */
  pollUrl (streamId: string): string {
    return `${this.options.issuer}/ssf/poll/${streamId}`
  }

  /** SSF 1.0 §8.1.1.1: a new stream; it starts with the session revocations of the last access-token lifetime. */
  async create (receiver: Receiver, input: StreamCreateRequest): Promise<StreamConfiguration> {
    const id = randomUUID()
    const delivery = await this.checkedDelivery(id, input.delivery, null)
    const requested = input.events_requested ?? []
    const delivered = eventsDelivered(requested)
    const now = new Date(this.options.now())
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BACKLOG_LOCK})`
      const count = await tx.ssfStream.count({ where: ownerFilter(receiver) })
      if (count >= MAX_STREAMS_PER_RECEIVER) {
        throw new DomainError('stream_limit', `a receiver may hold at most ${MAX_STREAMS_PER_RECEIVER} streams; delete one first`)
      }
      const created = await tx.ssfStream.create({
        data: {
          id,
          audience: receiver.kind === 'client' ? receiver.clientId : `urn:token-auth:ssf:stream:${id}`,
          ownerClientId: receiver.kind === 'client' ? receiver.clientId : null,
          ownerUserId: receiver.kind === 'admin' ? receiver.userId : null,
          eventsRequested: requested,
          eventsDelivered: delivered,
          ...delivery,
          description: input.description ?? null,
          createdAt: now,
          updatedAt: now,
        },
      })
      if (delivered.includes(SESSION_REVOKED)) await this.queueBacklog(tx, id, now)
      return created
    })
    return this.configuration(row)
  }

  /** SSF 1.0 §8.1.1.2: one of the receiver's streams. */
  async get (receiver: Receiver, streamId: string): Promise<StreamConfiguration> {
    return this.configuration(await this.owned(receiver, streamId))
  }

  /** SSF 1.0 §8.1.1.2 without a stream_id: every stream of the receiver, oldest first. */
  async list (receiver: Receiver): Promise<StreamConfiguration[]> {
    const rows = await this.db.ssfStream.findMany({ where: ownerFilter(receiver), orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })
    return rows.map((row) => this.configuration(row))
  }

  /**
   * SSF 1.0 §8.1.1.3 (PATCH, `replace` false: members absent stay) and
   * §8.1.1.4 (PUT, `replace` true: receiver-supplied members absent are
   * deleted). Transmitter-supplied members sent must match the stream as
   * it was. A stream that starts to receive session-revoked events gets the
   * backlog a new one would.
   */
  async update (receiver: Receiver, input: StreamUpdateRequest, replace: boolean): Promise<StreamConfiguration> {
    const current = await this.owned(receiver, input.stream_id)
    this.checkTransmitterSupplied(current, input)
    const delivery = input.delivery !== undefined || replace ? await this.checkedDelivery(current.id, input.delivery, current) : {}
    const requested = input.events_requested !== undefined ? input.events_requested : replace ? [] : current.eventsRequested ?? []
    const delivered = eventsDelivered(requested)
    const description = input.description !== undefined ? input.description : replace ? null : current.description
    const now = new Date(this.options.now())
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BACKLOG_LOCK})`
      const { count } = await tx.ssfStream.updateMany({
        where: { id: current.id, ...ownerFilter(receiver) },
        data: { ...delivery, eventsRequested: requested, eventsDelivered: delivered, description, updatedAt: now },
      })
      if (count === 0) throw notFound()
      const startsRevocations = delivered.includes(SESSION_REVOKED) && !(current.eventsDelivered ?? []).includes(SESSION_REVOKED)
      if (startsRevocations && current.status !== 'disabled') await this.queueBacklog(tx, current.id, now)
      return tx.ssfStream.findUniqueOrThrow({ where: { id: current.id } })
    })
    return this.configuration(row)
  }

  /** SSF 1.0 §8.1.1.5: deleted with every SET still queued on it. */
  async delete (receiver: Receiver, streamId: string): Promise<void> {
    const { count } = await this.db.ssfStream.deleteMany({ where: { id: streamId, ...ownerFilter(receiver) } })
    if (count === 0) throw notFound()
  }

  /** SSF 1.0 §8.1.2.1. */
  async status (receiver: Receiver, streamId: string): Promise<StreamStatus> {
    return statusOf(await this.owned(receiver, streamId))
  }

  /**
   * SSF 1.0 §8.1.2.2. Paused: events are held and delivered once enabled
   * again. Disabled: nothing is held, the SETs still queued are dropped. A
   * stream enabled again after being disabled starts with the backlog a new
   * one would (it missed revocations meanwhile).
   */
  async setStatus (receiver: Receiver, streamId: string, status: StreamStatusValue, reason: string | undefined): Promise<StreamStatus> {
    const current = await this.owned(receiver, streamId)
    const now = new Date(this.options.now())
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BACKLOG_LOCK})`
      const { count } = await tx.ssfStream.updateMany({
        where: { id: streamId, ...ownerFilter(receiver) },
        data: { status, statusReason: reason ?? null, updatedAt: now },
      })
      if (count === 0) throw notFound()
      if (status === 'disabled') {
        await tx.securityEvent.deleteMany({ where: { streamId, deliveredAt: null, deadAt: null } })
      } else if (current.status === 'disabled' && (current.eventsDelivered ?? []).includes(SESSION_REVOKED)) {
        await this.queueBacklog(tx, streamId, now)
      }
      return tx.ssfStream.findUniqueOrThrow({ where: { id: streamId } })
    })
    return statusOf(row)
  }

  /**
   * SSF 1.0 §8.1.4.2: queues a verification event (its sub_id the stream,
   * its state echoed). At most one per MIN_VERIFICATION_INTERVAL_SECONDS.
   */
  async verify (receiver: Receiver, streamId: string, state: string | undefined): Promise<void> {
    const now = new Date(this.options.now())
    const earliest = new Date(now.getTime() - MIN_VERIFICATION_INTERVAL_SECONDS * 1000)
    await this.db.$transaction(async (tx) => {
      const stream = await tx.ssfStream.findFirst({ where: { id: streamId, ...ownerFilter(receiver) }, select: { id: true, status: true } })
      if (!stream) throw notFound()
      const { count } = await tx.ssfStream.updateMany({
        where: { id: streamId, OR: [{ lastVerificationAt: null }, { lastVerificationAt: { lte: earliest } }] },
        data: { lastVerificationAt: now },
      })
      if (count === 0) {
        throw new DomainError('verification_too_frequent', `at most one verification request per ${MIN_VERIFICATION_INTERVAL_SECONDS} seconds (min_verification_interval)`, MIN_VERIFICATION_INTERVAL_SECONDS)
      }
      // A disabled stream transmits nothing (SSF 1.0 §8.1.2), a verification event neither.
      if (stream.status === 'disabled') return
      await tx.securityEvent.create({
        data: {
          streamId,
          event: VERIFICATION,
          subject: { format: 'opaque', id: streamId },
          claims: state === undefined ? {} : { state },
          createdAt: now,
          nextAttemptAt: now,
        },
      })
    })
  }

  /** A poll stream of the receiver, for the poll endpoint; throws stream_not_found. */
  async pollStream (receiver: Receiver, streamId: string): Promise<SsfStream> {
    const stream = await this.owned(receiver, streamId)
    if (stream.deliveryMethod !== 'poll') throw new DomainError('stream_not_found', 'this stream delivers by push (RFC 8935), not poll')
    return stream
  }

  /** Records that the stream was polled (at most once a minute): retention deletes poll streams abandoned for days. */
  async polled (stream: SsfStream): Promise<void> {
    const now = this.options.now()
    if (stream.lastPolledAt !== null && now - stream.lastPolledAt.getTime() < 60_000) return
    await this.db.ssfStream.updateMany({ where: { id: stream.id }, data: { lastPolledAt: new Date(now) } })
  }

  /** A push stream's Authorization header in clear, for a delivery. */
  authorizationHeader (streamId: string, sealed: Uint8Array | null): string | null {
    return sealed === null ? null : unseal(this.options.encryptionKey, sealed, streamId).toString('utf8')
  }

  private async owned (receiver: Receiver, streamId: string): Promise<SsfStream> {
    const stream = await this.db.ssfStream.findFirst({ where: { id: streamId, ...ownerFilter(receiver) } })
    if (!stream) throw notFound()
    return stream
  }

  /**
   * The columns of a delivery (SSF 1.0 §8.1.1.1: no delivery means poll).
   * A poll stream's endpoint is the transmitter's (a receiver may send it
   * back, unchanged); a push endpoint must be one the webhook rules let the
   * service reach, and its Authorization header is sealed.
   */
  private async checkedDelivery (streamId: string, delivery: DeliveryInput | undefined, current: SsfStream | null) {
    const method = delivery?.method ?? POLL_METHOD
    if (method === POLL_METHOD) {
      if (delivery?.endpoint_url !== undefined && delivery.endpoint_url !== this.pollUrl(streamId)) {
        throw invalidConfiguration('a poll stream\'s endpoint_url is the transmitter\'s: leave it out')
      }
      if (delivery?.authorization_header !== undefined) throw invalidConfiguration('authorization_header is for push delivery')
      return { deliveryMethod: 'poll', endpointUrl: null, authorizationHeaderEncrypted: null }
    }
    if (method !== PUSH_METHOD) throw invalidConfiguration(`delivery method ${method} is not supported: ${POLL_METHOD} or ${PUSH_METHOD}`)
    const url = delivery?.endpoint_url
    if (url === undefined) throw invalidConfiguration('push delivery needs the receiver\'s endpoint_url')
    const refusal = await this.options.checkPushEndpoint(url)
    if (refusal !== null) throw invalidConfiguration(`endpoint_url: ${refusal}`)
    const header = delivery?.authorization_header
    // PATCH of a push stream naming its own URL again keeps the header unless a new one comes.
    const keepHeader = header === undefined && current?.deliveryMethod === 'push' && current.endpointUrl === url ? current.authorizationHeaderEncrypted : null
    return {
      deliveryMethod: 'push',
      endpointUrl: url,
      authorizationHeaderEncrypted: header === undefined ? keepHeader : seal(this.options.encryptionKey, Buffer.from(header, 'utf8'), streamId),
    }
  }

  /** SSF 1.0 §8.1.1.3: transmitter-supplied members may be sent, but must be what the transmitter has. */
  private checkTransmitterSupplied (stream: SsfStream, input: StreamUpdateRequest): void {
    const config = this.configuration(stream)
    const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((item) => b.includes(item))
    if (input.iss !== undefined && input.iss !== config.iss) throw invalidConfiguration('iss does not match the transmitter\'s')
    if (input.aud !== undefined && !sameSet(typeof input.aud === 'string' ? [input.aud] : input.aud, [config.aud])) {
      throw invalidConfiguration('aud cannot be changed')
    }
    if (input.events_supported !== undefined && !sameSet(input.events_supported, config.events_supported)) {
      throw invalidConfiguration('events_supported does not match the transmitter\'s')
    }
    if (input.events_delivered !== undefined && !sameSet(input.events_delivered, config.events_delivered)) {
      throw invalidConfiguration('events_delivered does not match the stream\'s')
    }
    if (input.min_verification_interval !== undefined && input.min_verification_interval !== config.min_verification_interval) {
      throw invalidConfiguration('min_verification_interval does not match the transmitter\'s')
    }
    if (input.inactivity_timeout !== undefined && input.inactivity_timeout !== config.inactivity_timeout) {
      throw invalidConfiguration('inactivity_timeout does not match the transmitter\'s')
    }
  }

  /**
   * A session-revoked event for every session revoked within the longest
   * access-token lifetime (and a margin): a receiver that subscribes now
   * must refuse the tokens of a session revoked just before. Runs under the
   * exclusive backlog lock (see the trigger), in the stream's transaction.
   */
  private async queueBacklog (tx: Prisma.TransactionClient, streamId: string, now: Date): Promise<void> {
    const since = new Date(now.getTime() - (this.options.accessTokenTtlSeconds + BACKLOG_MARGIN_SECONDS) * 1000)
    await tx.$executeRaw`
      INSERT INTO security_events (stream_id, event, subject, claims, created_at, next_attempt_at)
      SELECT ${streamId}::uuid, ${SESSION_REVOKED},
             jsonb_build_object('format', 'complex',
               'session', jsonb_build_object('format', 'opaque', 'id', s.id::text),
               'user', jsonb_build_object('format', 'opaque', 'id', s.user_id::text)),
             jsonb_build_object('event_timestamp', floor(extract(epoch FROM s.revoked_at))::bigint, 'reason', s.revoked_reason),
             ${now}, ${now}
        FROM sessions s
       WHERE s.revoked_at >= ${since}
       ORDER BY s.revoked_at`
  }

  /** A stream as SSF 1.0 §8.1.1 shows it. */
  configuration (row: SsfStream): StreamConfiguration {
    const poll = row.deliveryMethod === 'poll'
    return {
      stream_id: row.id,
      iss: this.options.issuer,
      aud: row.audience,
      delivery: { method: poll ? POLL_METHOD : PUSH_METHOD, endpoint_url: poll ? this.pollUrl(row.id) : row.endpointUrl ?? '' },
      events_supported: [...EVENTS_SUPPORTED],
      events_requested: row.eventsRequested ?? [],
      events_delivered: row.eventsDelivered ?? [],
      ...(row.description !== null ? { description: row.description } : {}),
      min_verification_interval: MIN_VERIFICATION_INTERVAL_SECONDS,
      ...(poll ? { inactivity_timeout: ABANDONED_STREAM_DAYS * 24 * 3600 } : {}),
    }
  }
}

function ownerFilter (receiver: Receiver): Prisma.SsfStreamWhereInput {
  return receiver.kind === 'client' ? { ownerClientId: receiver.clientId } : { ownerUserId: receiver.userId }
}

function statusOf (row: SsfStream): StreamStatus {
  return { stream_id: row.id, status: row.status as StreamStatusValue, ...(row.statusReason !== null ? { reason: row.statusReason } : {}) }
}

function notFound (): DomainError {
  return new DomainError('stream_not_found', 'no stream with this stream_id for this receiver')
}

function invalidConfiguration (message: string): DomainError {
  return new DomainError('invalid_stream_configuration', message)
}
