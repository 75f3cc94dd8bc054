import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { normalizeEmail } from '../../domain/accounts.js'
import { ApiError } from '../../errors.js'

/**
 * Two limits on guessing passwords (DESIGN §3.10): AUTH_RATE_LIMIT_PER_MINUTE
 * per client IP and as many per account, whichever trips first. Returns no
 * hook when the limit is 0 (benchmarks). `accountOf` names the account a
 * request targets, or undefined for requests the limit does not apply to.
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
    keyGenerator: (request) => `${route}:account:${normalizeEmail(accountOf(request) ?? '')}`,
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
