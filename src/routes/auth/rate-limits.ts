import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { foldEmail } from '../../domain/accounts.js'
import { ApiError } from '../../errors.js'

/**
 * Two limits on guessing passwords (DESIGN §3.10): AUTH_RATE_LIMIT_PER_MINUTE
 * per client IP and as many per account, whichever trips first. Returns no
 * hook when the limit is 0 (benchmarks). `accountOf` names the account a
 * request targets, or undefined for requests the limit does not apply to.
 * Every attempt counts, successful or not: counting only failures would need
 * a second store round trip per login and would still let anyone who knows
 * an address exhaust its budget with wrong passwords.
 */
export function authRateLimit(
  fastify: FastifyInstance,
  route: string,
  accountOf: (request: FastifyRequest) => string | undefined,
): preHandlerAsyncHookHandler | undefined {
  const max = fastify.config.authRateLimitPerMinute
  if (max === 0) return undefined
  const perIp = fastify.createRateLimit({ max, timeWindow: 60_000, keyGenerator: (request) => `${route}:ip:${request.ip}` })
  const perAccount = fastify.createRateLimit({
    max,
    timeWindow: 60_000,
    // Hashed: the shared store (Redis) holds no email addresses.
    keyGenerator: (request) =>
      `${route}:account:${createHash('sha256').update(foldEmail(accountOf(request) ?? '')).digest('base64url')}`,
  })
  return async function limitPasswordGuesses(request: FastifyRequest) {
    const account = accountOf(request)
    if (account === undefined) return
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
