import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { SqlPool } from '../../db/sql-pool.js'
import { ApiError, DomainError } from '../../errors.js'
import { isDatabaseUnavailable } from '../../http/error-handler.js'
import { GRANT_TYPE_PREFIX } from '../../shared/authentication-methods.js'

/**
 * The service's Prometheus metrics (DESIGN §3.18), one registry per app
 * (never prom-client's global one: tests build many apps in one process).
 * Counting is in memory and costs a few hundred nanoseconds where it
 * happens: logins, refreshes, step-ups, second factors, the bcrypt queue,
 * rate-limit answers. What needs the database (the outboxes) is read when
 * Prometheus scrapes, not before.
 *
 * Every label takes its values from a fixed list below or from a route
 * pattern: no user id, session id, client secret, address or token can
 * become a label value.
 */

/** How a login's step proved who it was: the first step with a password or a passkey, or the second step of a password login. */
export const LOGIN_METHODS = ['password', 'passkey', 'second_factor'] as const
export type LoginMethod = (typeof LOGIN_METHODS)[number]

/**
 * How an attempt ended: signed in (or stepped up); refused for its
 * credentials (a wrong password or code, an unknown account, an unusable
 * mfa_token); a password that needs the second step; over an attempt
 * budget (429); shed or out of reach (503); a malformed request; anything
 * else (500).
 */
export const ATTEMPT_RESULTS = ['success', 'failure', 'mfa_required', 'rate_limited', 'unavailable', 'invalid_request', 'error'] as const
export type AttemptResult = (typeof ATTEMPT_RESULTS)[number]

/** A refresh: rotated (or answered from the grace window), or why not (features/sessions/sessions.ts RotationFailure). */
export const REFRESH_RESULTS = ['success', 'reused', 'expired', 'revoked', 'user_disabled', 'client_mismatch', 'unknown'] as const
export type RefreshResult = (typeof REFRESH_RESULTS)[number]

/** What a step-up presented. */
export const STEP_UP_FACTORS = ['password', 'totp', 'recovery_code', 'passkey', 'unknown'] as const
export type StepUpFactor = (typeof STEP_UP_FACTORS)[number]

/** A second factor checked at a login's second step or a step-up. */
export const SECOND_FACTORS = ['totp', 'recovery_code', 'passkey'] as const
export type SecondFactor = (typeof SECOND_FACTORS)[number]

export const WEBHOOK_RESULTS = ['delivered', 'failed', 'dead'] as const
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number]

/**
 * The outboxes whose backlog is watched: a kind, its table, and the column
 * set when a row is done. A row is pending while done and dead_at are both
 * NULL, dead once dead_at is set; its age counts from created_at. One line
 * each.
 */
export const OUTBOXES = [
  { kind: 'email', table: 'email_outbox', done: 'sent_at' },
  { kind: 'webhook', table: 'webhook_deliveries', done: 'delivered_at' },
  { kind: 'security_event', table: 'security_events', done: 'delivered_at' },
] as const
export type Outbox = (typeof OUTBOXES)[number]

/** One outbox as a scrape reads it. */
export interface OutboxState {
  oldestPendingAt: Date | null
  dead: number
}

/** Where the scrape-time gauges read from; each may be absent (the gauge then has no sample). */
export interface MetricSources {
  /** Every outbox's state, by kind; a kind whose table is not there (a capability not yet migrated) is absent (OutboxReader). */
  outboxes?: () => Promise<Map<string, OutboxState>>
  /** When this instance's revocation list last synced (ms since the epoch, the service's clock). */
  revocationSyncedAt?: () => number | undefined
  /** When the key now signing access tokens began signing (ms since the epoch). */
  signingKeyActivatedAt?: () => number | undefined
}

export interface ServiceMetricsOptions {
  now: () => number
  /**
   * prom-client's process metrics (CPU, memory, event-loop lag, GC). Only
   * where they are served: prom-client starts an event-loop monitor and a GC
   * observer per registry, and never stops them.
   */
  defaultMetrics?: boolean
  sources?: MetricSources
  /** Told when a scrape-time source fails (the scrape answers without it). */
  onSourceError?: (error: unknown, source: string) => void
}

/** The token request's parameters that say which grant it is and what a step-up presented. */
export interface TokenRequestParams {
  grant_type: string
  password?: unknown
  otp?: unknown
  recovery_code?: unknown
  credential?: unknown
}

const PASSKEY_GRANT = `${GRANT_TYPE_PREFIX}passkey`
const MFA_OTP_GRANT = `${GRANT_TYPE_PREFIX}mfa-otp`
const STEP_UP_GRANT = `${GRANT_TYPE_PREFIX}step-up`

/** The login steps of the token endpoint, by grant_type (the legacy password grant's family). */
const LOGIN_GRANTS: Readonly<Record<string, LoginMethod>> = {
  password: 'password',
  [PASSKEY_GRANT]: 'passkey',
  [MFA_OTP_GRANT]: 'second_factor',
}

/** Codes that refuse the credentials presented (rather than the request's form). */
const CREDENTIAL_FAILURES = new Set<string>(['invalid_grant', 'email_not_verified', 'invalid_session', 'invalid_credentials', 'invalid_otp'])
/** The second step: a password that checked out, the factor still to come. */
const SECOND_STEP_NEEDED = new Set<string>(['mfa_required', 'insufficient_authorization'])

/** How an attempt that threw ended, from its error's code and status. */
export function attemptResultOf (error: unknown): AttemptResult {
  const api = error instanceof ApiError ? error : error instanceof DomainError ? ApiError.from(error) : null
  if (!api) return isDatabaseUnavailable(error) ? 'unavailable' : 'error'
  if (SECOND_STEP_NEEDED.has(api.code)) return 'mfa_required'
  if (api.statusCode === 429) return 'rate_limited'
  if (api.statusCode === 503) return 'unavailable'
  if (api.statusCode >= 500) return 'error'
  return CREDENTIAL_FAILURES.has(api.code) ? 'failure' : 'invalid_request'
}

/** The factor a step-up request presents: exactly one of password, otp, recovery_code, credential. */
function stepUpFactorOf (params: TokenRequestParams): StepUpFactor {
  const presented: StepUpFactor[] = []
  if (params.password !== undefined) presented.push('password')
  if (params.otp !== undefined) presented.push('totp')
  if (params.recovery_code !== undefined) presented.push('recovery_code')
  if (params.credential !== undefined) presented.push('passkey')
  return presented.length === 1 ? presented[0]! : 'unknown'
}

export class ServiceMetrics {
  readonly registry = new Registry()
  private readonly logins: Counter<'method' | 'result'>
  private readonly refreshes: Counter<'result'>
  private readonly reuse: Counter
  private readonly stepUps: Counter<'factor' | 'result'>
  private readonly secondFactors: Counter<'factor' | 'result'>
  private readonly bcryptWait: Histogram
  private readonly bcryptShed: Counter
  private readonly rateLimited: Counter<'budget' | 'route'>
  private readonly webhookDeliveries: Counter<'result'>
  /** The outboxes' read of the scrape in progress: both outbox gauges wait on the one statement. */
  private outboxRead: Promise<Map<string, OutboxState>> | null = null

  constructor (private readonly options: ServiceMetricsOptions) {
    const registers = [this.registry]
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry })

    this.logins = new Counter({
      name: 'auth_logins_total',
      help: 'Login steps, by how the user proved who they were (password, passkey, or the second step after a password) and how it ended.',
      labelNames: ['method', 'result'],
      registers,
    })
    this.refreshes = new Counter({
      name: 'auth_token_refreshes_total',
      help: 'Refresh-token rotations (refresh_token grant), by result: success, or why the token was refused.',
      labelNames: ['result'],
      registers,
    })
    this.reuse = new Counter({
      name: 'auth_refresh_token_reuse_total',
      help: 'Sessions revoked because a retired refresh token was presented outside the grace window (reuse detection).',
      registers,
    })
    this.stepUps = new Counter({
      name: 'auth_step_ups_total',
      help: 'Step-up grants, by the factor presented and how they ended.',
      labelNames: ['factor', 'result'],
      registers,
    })
    this.secondFactors = new Counter({
      name: 'auth_second_factor_checks_total',
      help: 'Second factors checked at a login\'s second step or a step-up, by factor and result.',
      labelNames: ['factor', 'result'],
      registers,
    })
    this.bcryptWait = new Histogram({
      name: 'auth_bcrypt_queue_wait_seconds',
      help: 'Time a password hash or check waited for a bcrypt slot (0 when one was free).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.bcryptShed = new Counter({
      name: 'auth_bcrypt_shed_total',
      help: 'Password hashes and checks refused at once (503 temporarily_unavailable) because the expected wait for a bcrypt slot exceeded PASSWORD_QUEUE_MAX_WAIT_MS.',
      registers,
    })
    this.rateLimited = new Counter({
      name: 'auth_rate_limited_total',
      help: 'Answers 429 because an attempt budget was spent, by budget and route pattern.',
      labelNames: ['budget', 'route'],
      registers,
    })
    this.webhookDeliveries = new Counter({
      name: 'auth_webhook_deliveries_total',
      help: 'Webhook delivery attempts: delivered, failed (to be retried) or dead (out of attempts).',
      labelNames: ['result'],
      registers,
    })
    // Every series of a fixed label set exists from the start, at 0: rate() and alerts see the first increment.
    for (const method of LOGIN_METHODS) for (const result of ATTEMPT_RESULTS) this.logins.inc({ method, result }, 0)
    for (const result of REFRESH_RESULTS) this.refreshes.inc({ result }, 0)
    this.reuse.inc(0)
    for (const factor of STEP_UP_FACTORS) {
      for (const result of ATTEMPT_RESULTS) if (result !== 'mfa_required') this.stepUps.inc({ factor, result }, 0)
    }
    for (const factor of SECOND_FACTORS) for (const result of ['success', 'failure']) this.secondFactors.inc({ factor, result }, 0)
    this.bcryptShed.inc(0)
    for (const result of WEBHOOK_RESULTS) this.webhookDeliveries.inc({ result }, 0)

    const sources = options.sources ?? {}
    const outboxes = { registers, labelNames: ['kind'] as const }
    // prom-client calls collect() on every scrape; `this` below is the metrics object, not the gauge.
    const oldestPending: Gauge<'kind'> = new Gauge({
      name: 'auth_outbox_oldest_pending_seconds',
      help: 'Age of the oldest message waiting to be delivered, by outbox (email, webhook, security_event); 0 when none waits.',
      ...outboxes,
      collect: async () => {
        oldestPending.reset()
        for (const [kind, state] of await this.readOutboxes()) {
          oldestPending.set({ kind }, state.oldestPendingAt ? Math.max(0, this.options.now() - state.oldestPendingAt.getTime()) / 1000 : 0)
        }
      },
    })
    const dead: Gauge<'kind'> = new Gauge({
      name: 'auth_outbox_dead_messages',
      help: 'Messages parked as dead (out of attempts) and still kept, by outbox.',
      ...outboxes,
      collect: async () => {
        dead.reset()
        for (const [kind, state] of await this.readOutboxes()) dead.set({ kind }, state.dead)
      },
    })
    const revocationLag: Gauge = new Gauge({
      name: 'auth_revocation_sync_lag_seconds',
      help: 'Seconds since this instance\'s revocation list last synced with the database (it polls every 0.5 s; revoked sessions are refused within a second).',
      registers,
      collect: () => {
        revocationLag.reset()
        const at = this.read('revocation', sources.revocationSyncedAt)
        if (at !== undefined) revocationLag.set(Math.max(0, this.options.now() - at) / 1000)
      },
    })
    const keyAge: Gauge = new Gauge({
      name: 'auth_signing_key_age_seconds',
      help: 'Seconds since the key now signing access tokens began signing (rotate with npm run keys:rotate).',
      registers,
      collect: () => {
        keyAge.reset()
        const at = this.read('signing key', sources.signingKeyActivatedAt)
        if (at !== undefined) keyAge.set(Math.max(0, this.options.now() - at) / 1000)
      },
    })
  }

  /** The Prometheus text of every metric (what GET /metrics answers), and its content type. */
  async scrape (): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }

  /** Runs one login step (a grant, a hosted page's form, the challenge endpoint) and counts how it ended. */
  async login<T> (method: LoginMethod, step: () => Promise<T>): Promise<T> {
    try {
      const outcome = await step()
      this.logins.inc({ method, result: 'success' })
      return outcome
    } catch (error) {
      this.logins.inc({ method, result: attemptResultOf(error) })
      throw error
    }
  }

  /**
   * Runs a token request's grant: the login grants count as logins, the
   * step-up grant as a step-up; the others (refresh, authorization code,
   * client credentials) as they are counted elsewhere, or not at all.
   */
  tokenRequest<T> (params: TokenRequestParams, run: () => Promise<T>): Promise<T> {
    const method = LOGIN_GRANTS[params.grant_type]
    if (method !== undefined) return this.login(method, run)
    if (params.grant_type === STEP_UP_GRANT) return this.stepUp(stepUpFactorOf(params), run)
    return run()
  }

  private async stepUp<T> (factor: StepUpFactor, run: () => Promise<T>): Promise<T> {
    try {
      const outcome = await run()
      this.stepUps.inc({ factor, result: 'success' })
      return outcome
    } catch (error) {
      const result = attemptResultOf(error)
      this.stepUps.inc({ factor, result: result === 'mfa_required' ? 'invalid_request' : result })
      throw error
    }
  }

  /** A refresh rotation's outcome (SessionStore's onRefresh). */
  refresh (result: RefreshResult): void {
    this.refreshes.inc({ result })
  }

  /** A session revoked by reuse detection (SessionStore's onReuseDetected). */
  refreshTokenReused (): void {
    this.reuse.inc()
  }

  /** A second factor checked (SecondFactors' and Passkeys' secondFactorChecked). */
  secondFactorChecked (factor: SecondFactor, accepted: boolean): void {
    this.secondFactors.inc({ factor, result: accepted ? 'success' : 'failure' })
  }

  /** How long a bcrypt job waited for its slot (PasswordHasher's queue observer). */
  bcryptQueueWaited (seconds: number): void {
    this.bcryptWait.observe(seconds)
  }

  /** A bcrypt job refused at once: the queue's expected wait was past its bound. */
  bcryptShedOne (): void {
    this.bcryptShed.inc()
  }

  /** A 429 of an attempt budget (http/attempt-limits.ts): the budget's name and the route's pattern, never the key. */
  rateLimitedAnswer (budget: string, route: string | undefined): void {
    this.rateLimited.inc({ budget, route: route ?? 'unmatched' })
  }

  /** A webhook delivery attempt's outcome, for the webhook worker. */
  webhookDelivery (result: WebhookResult): void {
    this.webhookDeliveries.inc({ result })
  }

  private read (name: string, source: (() => number | undefined) | undefined): number | undefined {
    try {
      return source?.()
    } catch (error) {
      this.options.onSourceError?.(error, name)
      return undefined
    }
  }

  /** Every outbox's state, read once per scrape however many gauges ask; none when the read fails (told to onSourceError). */
  private readOutboxes (): Promise<Map<string, OutboxState>> {
    this.outboxRead ??= (async () => {
      try {
        return (await this.options.sources?.outboxes?.()) ?? new Map<string, OutboxState>()
      } catch (error) {
        this.options.onSourceError?.(error, 'outboxes')
        return new Map<string, OutboxState>()
      }
    })().finally(() => {
      this.outboxRead = null
    })
    return this.outboxRead
  }
}

/** SQLSTATEs of a table or column that is not there: undefined_table, undefined_column. */
const NOT_THERE = new Set(['42P01', '42703'])
/** How long the list of outbox tables that exist is trusted: a migration adding one shows within this. */
const TABLES_TTL_MS = 60_000

/**
 * The outboxes' state for the scrape-time gauges, in one statement over the
 * tables that exist (their list looked up once a minute), each part on an
 * index (created_at for the oldest pending row, dead_at for the dead ones).
 * Table and column names come from OUTBOXES, never from a request. When the
 * statement finds a table or column missing (a migration rolled back, a
 * table of another shape), each outbox is read alone once and the ones that
 * fail are left out until the list is looked up again.
 */
export class OutboxReader {
  private present: { outboxes: Outbox[]; until: number } | null = null

  constructor (private readonly sql: SqlPool, private readonly outboxes: readonly Outbox[] = OUTBOXES) {}

  async read (): Promise<Map<string, OutboxState>> {
    const outboxes = await this.presentOutboxes()
    if (outboxes.length === 0) return new Map()
    try {
      return await this.query(outboxes)
    } catch (error) {
      if (!NOT_THERE.has((error as { code?: string }).code ?? '')) throw error
      const states = new Map<string, OutboxState>()
      const usable: Outbox[] = []
      for (const outbox of outboxes) {
        try {
          for (const [kind, state] of await this.query([outbox])) states.set(kind, state)
          usable.push(outbox)
        } catch (alone) {
          if (!NOT_THERE.has((alone as { code?: string }).code ?? '')) throw alone
        }
      }
      if (this.present) this.present.outboxes = usable
      return states
    }
  }

  private async presentOutboxes (): Promise<Outbox[]> {
    const now = Date.now()
    if (this.present && this.present.until > now) return this.present.outboxes
    const { rows } = await this.sql.query<{ name: string }>({
      text: 'SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL',
      values: [this.outboxes.map((outbox) => outbox.table)],
    })
    const names = new Set(rows.map((row) => row.name))
    this.present = { outboxes: this.outboxes.filter((outbox) => names.has(outbox.table)), until: now + TABLES_TTL_MS }
    return this.present.outboxes
  }

  private async query (outboxes: readonly Outbox[]): Promise<Map<string, OutboxState>> {
    const parts = outboxes.map((outbox, index) =>
      `SELECT $${index + 1}::text AS kind, ` +
      `(SELECT min(created_at) FROM ${outbox.table} WHERE ${outbox.done} IS NULL AND dead_at IS NULL) AS oldest, ` +
      `(SELECT count(*)::int FROM ${outbox.table} WHERE dead_at IS NOT NULL) AS dead`)
    const { rows } = await this.sql.query<{ kind: string; oldest: Date | null; dead: number }>({
      text: parts.join(' UNION ALL '),
      values: outboxes.map((outbox) => outbox.kind),
    })
    return new Map(rows.map((row) => [row.kind, { oldestPendingAt: row.oldest, dead: row.dead }]))
  }
}
