import { availableParallelism } from 'node:os'
import bcrypt from 'bcrypt'
import { dictionary } from '@zxcvbn-ts/language-common'
import { DomainError } from '../../errors.js'

export const PASSWORD_MIN_BYTES = 8
/** bcrypt reads only the first 72 bytes; longer passwords are refused, never truncated. */
export const PASSWORD_MAX_BYTES = 72

const COMMON_PASSWORDS = new Set(
  (dictionary['passwords-common'] as string[]).filter((p) => p.length >= PASSWORD_MIN_BYTES).map((p) => p.toLowerCase())
)

/** NFC so that the same password typed on two keyboards hashes the same. */
export function normalizePassword (password: string): string {
  return password.normalize('NFC')
}

/** Why a new password is not acceptable, or null when it is. */
export function passwordProblem (password: string): string | null {
  const bytes = Buffer.byteLength(normalizePassword(password), 'utf8')
  if (bytes < PASSWORD_MIN_BYTES) return `password must be at least ${PASSWORD_MIN_BYTES} bytes`
  if (bytes > PASSWORD_MAX_BYTES) return `password must be at most ${PASSWORD_MAX_BYTES} bytes in UTF-8`
  if (COMMON_PASSWORDS.has(password.toLowerCase())) return 'password is too common'
  return null
}

/** Refused at once: the wait for a bcrypt slot would exceed its bound (load shedding). */
export class PasswordQueueFullError extends DomainError {
  override name = 'PasswordQueueFullError'
  constructor (override readonly retryAfterSeconds: number) {
    super('temporarily_unavailable', 'too many password checks are waiting; retry shortly', retryAfterSeconds)
  }
}

/** Told of each job's passage through the queue (the metrics): how long it waited for a slot, or that it was refused. */
export interface QueueObserver {
  waited(seconds: number): void
  shed(): void
}

/** Weight of the newest job in the running mean of job durations. */
const MEAN_WEIGHT = 0.2

/**
 * At most `limit` jobs at once, the rest queued first in, first out. bcrypt
 * runs on libuv's pool (4 threads by default): on a machine with fewer cores
 * than that, more hashes at once add no throughput, but they take CPU time
 * from the event loop (so from every other request) and hold the pool
 * threads that other asynchronous work (WebCrypto signing, fs) waits for.
 *
 * The queue is bounded by the wait it would impose: a job whose expected
 * wait (the jobs ahead of it, shared among the slots, times the running mean
 * of job durations) exceeds `maxWaitMs` is refused at once, so a login flood
 * gets fast 503s instead of a queue that makes every login time out.
 */
export class Limiter {
  private running = 0
  private readonly waiting: (() => void)[] = []
  private meanJobMs = 0

  constructor (private readonly limit: number) {}

  /** How long a job queued now would wait for a slot. */
  expectedWaitMs (): number {
    if (this.running < this.limit) return 0
    return (Math.floor(this.waiting.length / this.limit) + 1) * this.meanJobMs
  }

  async run<T>(job: () => Promise<T>, maxWaitMs = Infinity, observer?: QueueObserver): Promise<T> {
    if (this.running >= this.limit) {
      const wait = this.expectedWaitMs()
      if (wait > maxWaitMs) {
        observer?.shed()
        throw new PasswordQueueFullError(Math.max(1, Math.ceil(wait / 1000)))
      }
      const queuedAt = performance.now()
      await new Promise<void>((resolve) => this.waiting.push(resolve))
      observer?.waited((performance.now() - queuedAt) / 1000)
    } else {
      this.running++
      observer?.waited(0)
    }
    const started = performance.now()
    try {
      return await job()
    } finally {
      const took = performance.now() - started
      this.meanJobMs = this.meanJobMs === 0 ? took : this.meanJobMs + MEAN_WEIGHT * (took - this.meanJobMs)
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }
}

/** One bcrypt job per core, shared by every hasher in the process. */
const bcryptJobs = new Limiter(Math.max(1, availableParallelism()))

export class PasswordHasher {
  /** Compared against when the account does not exist, so both paths cost one bcrypt compare. */
  private readonly dummyHash: Promise<string>
  private readonly maxWaitMs: number
  private readonly queue: QueueObserver | undefined

  /**
   * `maxQueueWaitMs`: past this expected wait for a bcrypt slot, hash and
   * verify throw PasswordQueueFullError instead of queueing (0: no bound).
   * `queue` is told of each hash's and check's wait (the metrics).
   */
  constructor (
    private readonly cost: number,
    options: { maxQueueWaitMs?: number; queue?: QueueObserver } = {}
  ) {
    this.maxWaitMs = options.maxQueueWaitMs || Infinity
    this.queue = options.queue
    this.dummyHash = bcryptJobs.run(() => bcrypt.hash('dummy password for timing equality', cost))
  }

  /** Runs on libuv's thread pool: the event loop never waits for bcrypt. */
  hash (password: string): Promise<string> {
    const normalized = normalizePassword(password)
    return bcryptJobs.run(() => bcrypt.hash(normalized, this.cost), this.maxWaitMs, this.queue)
  }

  /**
   * Compares in constant work whether or not the account exists. A password
   * over 72 bytes never matches (it could not have been set).
   */
  async verify (password: string, hash: string | undefined): Promise<boolean> {
    const normalized = normalizePassword(password)
    const tooLong = Buffer.byteLength(normalized, 'utf8') > PASSWORD_MAX_BYTES
    const against = hash ?? (await this.dummyHash)
    const matches = await bcryptJobs.run(() => bcrypt.compare(normalized, against), this.maxWaitMs, this.queue)
    return matches && hash !== undefined && !tooLong
  }
}
