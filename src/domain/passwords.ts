import { availableParallelism } from 'node:os'
import bcrypt from 'bcrypt'
import { dictionary } from '@zxcvbn-ts/language-common'

export const PASSWORD_MIN_BYTES = 8
/** bcrypt reads only the first 72 bytes; longer passwords are refused, never truncated. */
export const PASSWORD_MAX_BYTES = 72

const COMMON_PASSWORDS = new Set(
  (dictionary['passwords-common'] as string[]).filter((p) => p.length >= PASSWORD_MIN_BYTES).map((p) => p.toLowerCase()),
)

/** NFC so that the same password typed on two keyboards hashes the same. */
export function normalizePassword(password: string): string {
  return password.normalize('NFC')
}

/** Why a new password is not acceptable, or null when it is. */
export function passwordProblem(password: string): string | null {
  const bytes = Buffer.byteLength(normalizePassword(password), 'utf8')
  if (bytes < PASSWORD_MIN_BYTES) return `password must be at least ${PASSWORD_MIN_BYTES} bytes`
  if (bytes > PASSWORD_MAX_BYTES) return `password must be at most ${PASSWORD_MAX_BYTES} bytes in UTF-8`
  if (COMMON_PASSWORDS.has(password.toLowerCase())) return 'password is too common'
  return null
}

/**
 * At most `limit` jobs at once, the rest queued first in, first out. bcrypt
 * runs on libuv's pool (4 threads by default): on a machine with fewer cores
 * than that, more hashes at once add no throughput, but they take CPU time
 * from the event loop (so from every other request) and hold the pool
 * threads that other asynchronous work (WebCrypto signing, fs) waits for.
 */
class Limiter {
  private running = 0
  private readonly waiting: (() => void)[] = []

  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.running++
    try {
      return await job()
    } finally {
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

  constructor(private readonly cost: number) {
    this.dummyHash = bcryptJobs.run(() => bcrypt.hash('dummy password for timing equality', cost))
  }

  /** Runs on libuv's thread pool: the event loop never waits for bcrypt. */
  hash(password: string): Promise<string> {
    const normalized = normalizePassword(password)
    return bcryptJobs.run(() => bcrypt.hash(normalized, this.cost))
  }

  /**
   * Compares in constant work whether or not the account exists. A password
   * over 72 bytes never matches (it could not have been set).
   */
  async verify(password: string, hash: string | undefined): Promise<boolean> {
    const normalized = normalizePassword(password)
    const tooLong = Buffer.byteLength(normalized, 'utf8') > PASSWORD_MAX_BYTES
    const against = hash ?? (await this.dummyHash)
    const matches = await bcryptJobs.run(() => bcrypt.compare(normalized, against))
    return matches && hash !== undefined && !tooLong
  }
}
