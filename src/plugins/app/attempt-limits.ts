import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { foldEmail } from '../../domain/accounts.js'
import { ApiError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    attemptLimits: AttemptLimits
  }
}

/**
 * The budgets of AUTH_RATE_LIMIT_PER_MINUTE (DESIGN §3.10), each per client
 * IP and per account, whichever trips first; a 429 with Retry-After past
 * them. Limit 0 turns them off (benchmarks).
 */
export interface AttemptLimits {
  /**
   * Every check of a password against an account, wherever it happens (the
   * password grant, a password change, later email change and factor
   * removal) draws on this one budget, so a stolen access token cannot guess
   * through a route the login limit does not see.
   */
  passwordCheck(request: FastifyRequest, accountEmail: string): Promise<void>
  /** Sign-ups, per IP and per address (a 409 tells whether an address has an account). */
  signup(request: FastifyRequest, email: string): Promise<void>
}

/**
 * Every attempt counts, successful or not: counting only failures would need
 * a second store round trip per login and would still let anyone who knows
 * an address exhaust its budget with wrong passwords.
 */
async function attemptLimits (fastify: FastifyInstance) {
  const max = fastify.config.authRateLimitPerMinute
  const budget = (name: string): ((request: FastifyRequest, account: string) => Promise<void>) => {
    if (max === 0) return async () => {}
    // The account a request's attempt is counted against, for the key generator.
    const accounts = new WeakMap<FastifyRequest, string>()
    const perIp = fastify.createRateLimit({ max, timeWindow: 60_000, keyGenerator: (request) => `${name}:ip:${request.ip}` })
    const perAccount = fastify.createRateLimit({
      max,
      timeWindow: 60_000,
      // Hashed: the shared store (Redis) holds no email addresses.
      keyGenerator: (request) =>
        `${name}:account:${createHash('sha256').update(foldEmail(accounts.get(request) ?? '')).digest('base64url')}`,
    })
    return async (request, account) => {
      accounts.set(request, account)
      for (const limiter of [perIp, perAccount]) {
        const result = await limiter(request)
        if (!result.isAllowed && result.isExceeded) {
          throw new ApiError(429, 'rate_limited', `too many attempts; retry in ${result.ttlInSeconds} s`, {
            'retry-after': String(result.ttlInSeconds),
          })
        }
      }
    }
  }
  fastify.decorate('attemptLimits', { passwordCheck: budget('password'), signup: budget('signup') } satisfies AttemptLimits)
}

export default fp(attemptLimits, { name: 'attempt-limits', dependencies: ['config', 'rate-limit'] })
