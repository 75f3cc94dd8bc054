import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { metadataUrl } from './discovery.js'
import { IssuerUnavailableError } from './errors.js'
import { fetchJson } from './http.js'

/**
 * The resource-server side of the platform's security events (DESIGN
 * §3.18): the plugin creates its own poll stream at the issuer (SSF 1.0
 * §8.1.1.1, RFC 8936), long-polls it, and keeps every session revoked within
 * the last access-token lifetime in memory, so a revoked session's access
 * tokens are refused within about a second, on every route, without an
 * introspection call per request. Each SET is verified as RFC 8417 §4 and
 * SSF 1.0 §4.1 ask (the issuer's published keys, the pinned algorithms,
 * typ secevent+jwt, iss, the stream's aud, no sub, no exp, a jti processed
 * once) before anything in it counts; a SET that fails is reported back to
 * the issuer (setErrs) and changes nothing.
 *
 * While the stream works, sensitive routes need no introspection either.
 * When it has not answered for `staleAfterMs` (the issuer or the network is
 * down), the stream is degraded: sensitive routes fall back to introspection
 * as without a stream; the sessions already known revoked stay refused.
 */

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
const SET_TYP = 'secevent+jwt'
const POLL_METHOD = 'urn:ietf:rfc:8936'

/** The credential the plugin manages its stream with. */
export type SecurityEventsCredential =
  /** An API key of the issuer's, of an admin, holding the `events` scope. */
  | string
  /** A confidential client registered for client_credentials with the `events` scope. */
  | { clientId: string; clientSecret: string }

export interface SecurityEventsOptions {
  credential: SecurityEventsCredential
  /**
   * How long the stream may fail before it counts as down and sensitive
   * routes fall back to introspection. Default 3 000 ms.
   */
  staleAfterMs?: number
  /**
   * How long a revoked session is remembered: longer than the issuer's
   * longest access-token lifetime (its ACCESS_TOKEN_TTL_SECONDS, 600 by
   * default). Default 3 600 s.
   */
  revokedSessionTtlSeconds?: number
  /** The longest one poll may take, the issuer's long-poll wait (5 s) included: a poll unanswered by then counts as a failure. Default 8 000 ms. */
  pollTimeoutMs?: number
  /** The stream's description at the issuer (SSF 1.0 §8.1.1). Default "resource server <audience>". */
  description?: string
  /** Called with every verified SET (session-revoked, credential-change, …) once it counted. */
  onEvent?: (event: SecurityEvent) => void
}

/** A verified Security Event Token, as handed to `onEvent`. */
export interface SecurityEvent {
  /** The event type URI. */
  type: string
  /** The event's claims (CAEP 1.0). */
  event: Record<string, unknown>
  /** The SET's sub_id (RFC 9493 / SSF 1.0 §3). */
  subject: Record<string, unknown>
  jti: string
  issuedAt: number
  txn: string | undefined
}

/** Where the stream stands, for a health endpoint or a log. */
export interface SecurityEventsHealth {
  /** starting: no stream yet, or its backlog not received; healthy; degraded: failing for staleAfterMs or more; closed. */
  state: 'starting' | 'healthy' | 'degraded' | 'closed'
  streamId: string | null
  /** When a poll last answered (ms since the epoch), or null. */
  lastPollAt: number | null
  /** Since when polls have been failing, or null. */
  failingSince: number | null
  lastError: string | null
  /** Sessions known revoked, not yet forgotten. */
  revokedSessions: number
  /** SETs verified and processed, refused (bad signature, issuer, audience…), and seen again (a jti already processed). */
  received: number
  refused: number
  replayed: number
}

export interface SecurityEventStreamOptions extends SecurityEventsOptions {
  issuer: string
  audience: readonly string[]
  algorithms: readonly string[]
  clockToleranceSeconds: number
  getKey: JWTVerifyGetKey
  fetch: typeof fetch
  timeoutMs: number
  now: () => number
  log: { info(object: object, message: string): void; warn(object: object, message: string): void }
}

interface Transmitter {
  configurationEndpoint: string
  tokenEndpoint: string | undefined
}

interface Stream {
  id: string
  audience: string
  pollUrl: string
}

/** The issuer answered a management or poll request with this status. */
class StreamRequestError extends Error {
  constructor (readonly status: number, message: string) {
    super(message)
    this.name = 'StreamRequestError'
  }
}

const DEFAULTS = { staleAfterMs: 3_000, revokedSessionTtlSeconds: 3_600, pollTimeoutMs: 8_000 }
const MAX_EVENTS = 200
const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 5_000
/** A client_credentials token is renewed this long before it expires. */
const TOKEN_MARGIN_MS = 30_000

/** SSF 1.0 §7.2: the transmitter metadata URL of an issuer, the well-known segment before any path. */
export function ssfConfigurationUrl (issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  return `${url.origin}/.well-known/ssf-configuration${path}`
}

export class SecurityEventStream {
  private readonly options: SecurityEventStreamOptions & typeof DEFAULTS
  /** sid → when it may be forgotten (ms, on the options' clock). */
  private readonly revoked = new Map<string, number>()
  /** jti → when it may be forgotten: a SET is processed once. */
  private readonly seen = new Map<string, number>()
  private transmitter: Transmitter | undefined
  private stream: Stream | undefined
  private token: { value: string; expiresAt: number } | undefined
  private pendingAcks: string[] = []
  private pendingErrors: Record<string, { err: string; description: string }> = {}
  private caughtUp = false
  private lastPollAt: number | null = null
  private failingSince: number | null = null
  private lastError: string | null = null
  private counts = { received: 0, refused: 0, replayed: 0 }
  private closed = false
  private running: Promise<void> | undefined
  private readonly abort = new AbortController()
  private healthyWaiters: (() => void)[] = []
  private lastState: SecurityEventsHealth['state'] = 'starting'

  constructor (options: SecurityEventStreamOptions) {
    this.options = { ...DEFAULTS, ...definedOnly(options) } as SecurityEventStreamOptions & typeof DEFAULTS
    if (typeof options.credential === 'string' ? options.credential === '' : !options.credential.clientId || !options.credential.clientSecret) {
      throw new TypeError('resource-server: events.credential must be an API key with the events scope or { clientId, clientSecret }')
    }
  }

  /** Starts creating the stream and polling it, in the background. */
  start (): void {
    this.running ??= this.run()
  }

  /** Whether a session was revoked (a token naming it must be refused). */
  isRevoked (sessionId: string): boolean {
    const until = this.revoked.get(sessionId)
    if (until === undefined) return false
    if (until < this.options.now()) {
      this.revoked.delete(sessionId)
      return false
    }
    return true
  }

  /** Whether the stream is up to date: revocations reach this service within about a second. */
  isHealthy (): boolean {
    return this.state() === 'healthy'
  }

  health (): SecurityEventsHealth {
    return {
      state: this.state(),
      streamId: this.stream?.id ?? null,
      lastPollAt: this.lastPollAt,
      failingSince: this.failingSince,
      lastError: this.lastError,
      revokedSessions: this.revoked.size,
      ...this.counts,
    }
  }

  /** Resolves once the stream is healthy (its backlog received); rejects after `timeoutMs`. */
  whenHealthy (timeoutMs = 10_000): Promise<void> {
    if (this.isHealthy()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.healthyWaiters = this.healthyWaiters.filter((waiter) => waiter !== done)
        reject(new Error(`the security-event stream is not healthy after ${timeoutMs} ms: ${JSON.stringify(this.health())}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        resolve()
      }
      this.healthyWaiters.push(done)
    })
  }

  /** Stops polling and deletes the stream at the issuer (best effort: an abandoned stream expires there). */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    // The stream is deleted while the long poll still holds its connection, then the poll is
    // abandoned: an HTTP client pool that opened a connection for the deletion uses it at once,
    // rather than leaving one open without a request, which would hold up the issuer's own shutdown.
    const deleted = this.stream ? await this.deleteStream(this.stream) : undefined
    this.abort.abort()
    await this.running?.catch(() => {})
    // A stream created while closing began.
    if (this.stream && this.stream.id !== deleted) await this.deleteStream(this.stream)
    this.stream = undefined
  }

  private async deleteStream (stream: Stream): Promise<string> {
    if (!this.transmitter) return stream.id
    try {
      const url = `${this.transmitter.configurationEndpoint}?stream_id=${encodeURIComponent(stream.id)}`
      await this.request('DELETE', url, undefined, AbortSignal.timeout(this.options.timeoutMs))
    } catch (error) {
      this.options.log.warn({ err: error, streamId: stream.id }, 'resource-server: could not delete the security-event stream; the issuer drops it once abandoned')
    }
    return stream.id
  }

  /**
   * Verifies and processes one SET of the stream. Returns null when it
   * counted (or was already processed), else the RFC 8936 §2.4.4 error to
   * report.
   */
  async receive (jti: string, set: string): Promise<{ err: string; description: string } | null> {
    const stream = this.stream
    if (!stream) return { err: 'invalid_request', description: 'no stream' }
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(set, this.options.getKey, {
        issuer: this.options.issuer,
        audience: stream.audience,
        algorithms: [...this.options.algorithms],
        typ: SET_TYP,
        requiredClaims: ['jti', 'iat'],
        clockTolerance: this.options.clockToleranceSeconds,
      }))
    } catch (error) {
      // The issuer's keys out of reach is no fault of the SET: it stays unacknowledged and comes again.
      if (error instanceof IssuerUnavailableError) throw error
      this.counts.refused++
      return refusal(error)
    }
    const claims = payload as Record<string, unknown>
    // SSF 1.0 §4.1.3: never a sub, never an exp (what would let a SET pass for another kind of JWT, and the reverse).
    if ('sub' in claims || 'exp' in claims || typeof claims.events !== 'object' || claims.events === null || typeof claims.sub_id !== 'object' || claims.sub_id === null) {
      this.counts.refused++
      return { err: 'invalid_request', description: 'not a Security Event Token of the Shared Signals Framework' }
    }
    if (claims.jti !== jti) {
      this.counts.refused++
      return { err: 'invalid_request', description: 'the jti does not match the key it was delivered under' }
    }
    const now = this.options.now()
    if (this.seen.has(jti)) {
      // Delivered again (an acknowledgement lost, or replayed): processed once, acknowledged again.
      this.counts.replayed++
      return null
    }
    const events = Object.entries(claims.events as Record<string, unknown>)
    for (const [type, event] of events) {
      if (typeof event !== 'object' || event === null) continue
      if (type === SESSION_REVOKED) {
        const session = (claims.sub_id as Record<string, unknown>).session as Record<string, unknown> | undefined
        if (session?.format !== 'opaque' || typeof session.id !== 'string') {
          // SSF 1.0 §3.4: `session` is a critical member this receiver must be able to read.
          this.counts.refused++
          return { err: 'invalid_request', description: 'a session-revoked event without an opaque session subject' }
        }
        const at = typeof (event as { event_timestamp?: unknown }).event_timestamp === 'number'
          ? (event as { event_timestamp: number }).event_timestamp * 1000
          : (payload.iat ?? 0) * 1000
        this.revoked.set(session.id, Math.max(this.revoked.get(session.id) ?? 0, at + this.options.revokedSessionTtlSeconds * 1000))
      }
    }
    this.seen.set(jti, now + this.options.revokedSessionTtlSeconds * 1000)
    this.counts.received++
    for (const [type, event] of events) {
      try {
        this.options.onEvent?.({
          type,
          event: event as Record<string, unknown>,
          subject: claims.sub_id as Record<string, unknown>,
          jti,
          issuedAt: payload.iat ?? 0,
          txn: typeof claims.txn === 'string' ? claims.txn : undefined,
        })
      } catch (error) {
        this.options.log.warn({ err: error }, 'resource-server: an onEvent listener threw')
      }
    }
    return null
  }

  private state (): SecurityEventsHealth['state'] {
    if (this.closed) return 'closed'
    if (this.failingSince !== null) return Date.now() - this.failingSince >= this.options.staleAfterMs ? 'degraded' : this.caughtUp ? 'healthy' : 'starting'
    return this.stream && this.caughtUp ? 'healthy' : 'starting'
  }

  private async run (): Promise<void> {
    let delay = RETRY_MIN_MS
    while (!this.closed) {
      try {
        this.stream ??= await this.createStream()
        await this.pollOnce()
        delay = RETRY_MIN_MS
      } catch (error) {
        if (this.closed) return
        this.failed(error)
        await sleep(delay, this.abort.signal)
        delay = Math.min(RETRY_MAX_MS, delay * 2)
      }
      this.noteState()
    }
  }

  private failed (error: unknown): void {
    this.failingSince ??= Date.now()
    this.lastError = error instanceof Error ? error.message : String(error)
    if (error instanceof StreamRequestError) {
      // The stream is gone (deleted at the issuer, or expired while this service was away): a new one, with its backlog.
      if (error.status === 404) {
        this.stream = undefined
        this.caughtUp = false
        this.pendingAcks = []
        this.pendingErrors = {}
      }
      if (error.status === 401) this.token = undefined
    }
    this.noteState()
  }

  /** Logs each change of state and wakes whenHealthy() callers. */
  private noteState (): void {
    const state = this.state()
    if (state === this.lastState) return
    this.lastState = state
    if (state === 'healthy') {
      this.options.log.info({ streamId: this.stream?.id }, 'resource-server: security-event stream healthy')
      for (const waiter of this.healthyWaiters.splice(0)) waiter()
    } else if (state === 'degraded') {
      this.options.log.warn({ error: this.lastError }, 'resource-server: security-event stream down; sensitive routes fall back to introspection')
    }
  }

  private async discover (): Promise<Transmitter> {
    if (this.transmitter) return this.transmitter
    const url = ssfConfigurationUrl(this.options.issuer)
    const { status, body } = await fetchJson(this.options.fetch, url, { timeoutMs: this.options.timeoutMs })
    if (status !== 200 || typeof body !== 'object' || body === null) throw new IssuerUnavailableError(`${url}: answered ${status}`)
    const metadata = body as Record<string, unknown>
    // SSF 1.0 §7.2.3: the metadata must name the issuer it was fetched from.
    if (metadata.issuer !== this.options.issuer) throw new IssuerUnavailableError(`${url}: names issuer ${JSON.stringify(metadata.issuer)}, not ${this.options.issuer}`)
    if (typeof metadata.configuration_endpoint !== 'string') throw new IssuerUnavailableError(`${url}: no configuration_endpoint`)
    const methods = Array.isArray(metadata.delivery_methods_supported) ? metadata.delivery_methods_supported : []
    if (!methods.includes(POLL_METHOD)) throw new IssuerUnavailableError(`${url}: the issuer does not deliver by poll (${POLL_METHOD})`)
    let tokenEndpoint: string | undefined
    if (typeof this.options.credential !== 'string') {
      const oauth = await fetchJson(this.options.fetch, metadataUrl(this.options.issuer), { timeoutMs: this.options.timeoutMs })
      const endpoint = (oauth.body as Record<string, unknown> | null)?.token_endpoint
      if (oauth.status !== 200 || typeof endpoint !== 'string') throw new IssuerUnavailableError('the issuer publishes no token_endpoint')
      tokenEndpoint = endpoint
    }
    this.transmitter = { configurationEndpoint: metadata.configuration_endpoint, tokenEndpoint }
    return this.transmitter
  }

  /** SSF 1.0 §8.1.1.1: a poll stream for the events this service acts on. */
  private async createStream (): Promise<Stream> {
    const transmitter = await this.discover()
    const events = this.options.onEvent ? [SESSION_REVOKED, CREDENTIAL_CHANGE] : [SESSION_REVOKED]
    const body = await this.request('POST', transmitter.configurationEndpoint, {
      delivery: { method: POLL_METHOD },
      events_requested: events,
      description: this.options.description ?? `resource server ${this.options.audience.join(' ')}`.slice(0, 1000),
    }, this.timeout(this.options.timeoutMs))
    const config = body as Record<string, unknown>
    const delivery = config.delivery as Record<string, unknown> | undefined
    if (config.iss !== this.options.issuer) throw new IssuerUnavailableError(`the stream names issuer ${JSON.stringify(config.iss)}`)
    if (typeof config.stream_id !== 'string' || typeof config.aud !== 'string' || typeof delivery?.endpoint_url !== 'string') {
      throw new IssuerUnavailableError('the issuer answered a stream without stream_id, aud or a poll endpoint_url')
    }
    if (!Array.isArray(config.events_delivered) || !config.events_delivered.includes(SESSION_REVOKED)) {
      throw new IssuerUnavailableError('the issuer does not deliver session-revoked events on the stream')
    }
    this.caughtUp = false
    this.options.log.info({ streamId: config.stream_id }, 'resource-server: security-event stream created')
    return { id: config.stream_id, audience: config.aud, pollUrl: delivery.endpoint_url }
  }

  /** One RFC 8936 poll: acknowledges what was processed, waits for SETs, processes them. */
  private async pollOnce (): Promise<void> {
    const stream = this.stream!
    const ack = this.pendingAcks
    const setErrs = this.pendingErrors
    const body = await this.request('POST', stream.pollUrl, {
      ...(ack.length > 0 ? { ack } : {}),
      ...(Object.keys(setErrs).length > 0 ? { setErrs } : {}),
      maxEvents: MAX_EVENTS,
      // Long polling once caught up (the issuer answers as soon as an event is queued); until then, at once.
      returnImmediately: !this.caughtUp,
    }, this.timeout(this.options.pollTimeoutMs))
    // Sent: a failure from here on must not send them again with a new stream.
    this.pendingAcks = []
    this.pendingErrors = {}
    const answer = body as { sets?: unknown; moreAvailable?: unknown }
    if (typeof answer.sets !== 'object' || answer.sets === null) throw new IssuerUnavailableError('the poll answered no sets')
    for (const [jti, set] of Object.entries(answer.sets as Record<string, unknown>)) {
      const error = typeof set === 'string' ? await this.receive(jti, set) : { err: 'invalid_request', description: 'not a JWT' }
      if (error === null) this.pendingAcks.push(jti)
      else {
        this.pendingErrors[jti] = error
        this.options.log.warn({ jti, ...error }, 'resource-server: a security event token was refused')
      }
    }
    this.prune()
    this.lastPollAt = Date.now()
    this.failingSince = null
    this.lastError = null
    if (answer.moreAvailable !== true) this.caughtUp = true
  }

  private prune (): void {
    const now = this.options.now()
    for (const [sid, until] of this.revoked) if (until < now) this.revoked.delete(sid)
    for (const [jti, until] of this.seen) if (until < now) this.seen.delete(jti)
  }

  private timeout (ms: number): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(ms)])
  }

  /** A JSON request to the transmitter with this service's credential; 2xx answers their body, anything else throws. */
  private async request (method: 'POST' | 'DELETE', url: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    const authorization = await this.authorization()
    let response: Response
    try {
      response = await this.options.fetch(url, {
        method,
        headers: { authorization, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'error',
        signal,
      })
    } catch (error) {
      throw new IssuerUnavailableError(`${url}: ${(error as { name?: string }).name === 'TimeoutError' ? 'no answer in time' : 'unreachable'}`, { cause: error })
    }
    const text = await response.text().catch(() => '')
    if (response.status < 200 || response.status >= 300) {
      throw new StreamRequestError(response.status, `${method} ${url}: answered ${response.status}${text ? ` ${text.slice(0, 200)}` : ''}`)
    }
    if (text === '') return undefined
    try {
      return JSON.parse(text) as unknown
    } catch (error) {
      throw new IssuerUnavailableError(`${url}: answered ${response.status} without a JSON body`, { cause: error })
    }
  }

  /** The Authorization header: the API key, or a client_credentials token (renewed before it expires). */
  private async authorization (): Promise<string> {
    const credential = this.options.credential
    if (typeof credential === 'string') return `Bearer ${credential}`
    const now = Date.now()
    if (this.token && this.token.expiresAt - TOKEN_MARGIN_MS > now) return `Bearer ${this.token.value}`
    const endpoint = (await this.discover()).tokenEndpoint!
    const basic = Buffer.from(`${encodeURIComponent(credential.clientId)}:${encodeURIComponent(credential.clientSecret)}`).toString('base64')
    const { status, body } = await fetchJson(this.options.fetch, endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'events' }).toString(),
      timeoutMs: this.options.timeoutMs,
    })
    const answer = body as { access_token?: unknown; expires_in?: unknown } | null
    if (status !== 200 || typeof answer?.access_token !== 'string') {
      throw new StreamRequestError(status, `the token endpoint refused this service's client credentials (${status})`)
    }
    const expiresIn = typeof answer.expires_in === 'number' ? answer.expires_in : 300
    this.token = { value: answer.access_token, expiresAt: now + expiresIn * 1000 }
    return `Bearer ${this.token.value}`
  }
}

/** The RFC 8936 §2.4.4 / RFC 8935 §2.3 error of a SET that did not verify. */
function refusal (error: unknown): { err: string; description: string } {
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return { err: 'invalid_issuer', description: 'the SET is not from the expected issuer' }
    if (error.claim === 'aud') return { err: 'invalid_audience', description: 'the SET is not for this stream' }
    return { err: 'invalid_request', description: `the SET's ${error.claim} is not accepted` }
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
    return { err: 'invalid_key', description: 'the SET is not signed by a key of the issuer' }
  }
  return { err: 'invalid_request', description: 'the SET is malformed' }
}

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done () {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

function definedOnly<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
