import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { foldEmail } from '../features/accounts/accounts.js'
import { ApiError } from '../errors.js'

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
  /**
   * Every request that sends email (password reset, verification resend,
   * address change, an admin's reset), per hour, per IP and per address the
   * mail goes to: no one can flood an inbox or spend the sender's reputation.
   */
  email(request: FastifyRequest, address: string): Promise<void>
  /**
   * Every check of a one-time code (TOTP or recovery code) against a user,
   * wherever it happens (the mfa-otp grant, factor removal, step-up), per
   * user per 15 minutes (OTP_RATE_LIMIT_PER_USER): a million codes cannot be
   * guessed a few at a time (RFC 6238 §5.2, RFC 4226 §7.3).
   */
  oneTimeCode(request: FastifyRequest, userId: string): Promise<void>
  /**
   * Passkey sign-ins, per IP, two budgets: the challenges handed out (POST
   * /auth/passkey/options, each a row) and the assertions presented (each
   * checked and, when refused, audited).
   */
  passkey(request: FastifyRequest, step: 'options' | 'grant'): Promise<void>
}

/**
 * Every attempt counts, successful or not: counting only failures would need
 * a second store round trip per login and would still let anyone who knows
 * an address exhaust its budget with wrong passwords.
 */
async function attemptLimits (fastify: FastifyInstance) {
  const max = fastify.config.authRateLimitPerMinute
  const perMinute = { perIp: max, perAccount: max, windowMs: 60_000 }
  const budget = (
    name: string,
    limits: { perIp: number; perAccount: number; windowMs: number }
  ): ((request: FastifyRequest, account: string) => Promise<void>) => {
    // The account a request's attempt is counted against, for the key generator.
    const accounts = new WeakMap<FastifyRequest, string>()
    const limiters: ReturnType<FastifyInstance['createRateLimit']>[] = []
    if (limits.perIp > 0) {
      limiters.push(fastify.createRateLimit({ max: limits.perIp, timeWindow: limits.windowMs, keyGenerator: (request) => `${name}:ip:${request.ip}` }))
    }
    if (limits.perAccount > 0) {
      limiters.push(fastify.createRateLimit({
        max: limits.perAccount,
        timeWindow: limits.windowMs,
        // Hashed: the shared store (Redis) holds no email addresses.
        keyGenerator: (request) =>
          `${name}:account:${createHash('sha256').update(foldEmail(accounts.get(request) ?? '')).digest('base64url')}`,
      }))
    }
    if (limiters.length === 0) return async () => {}
    return async (request, account) => {
      accounts.set(request, account)
      for (const limiter of limiters) {
        const result = await limiter(request)
        if (!result.isAllowed && result.isExceeded) {
          // The budget's name and the route's pattern: never the key (an address, an account).
          fastify.metrics.rateLimitedAnswer(name, request.routeOptions.url)
          throw new ApiError('rate_limited', `too many attempts; retry in ${result.ttlInSeconds} s`, {
            'retry-after': String(result.ttlInSeconds),
          })
        }
      }
    }
  }
  const { email } = fastify.config
  const passkeyOptions = budget('passkey-options', { ...perMinute, perAccount: 0 })
  const passkeyGrants = budget('passkey-grant', { ...perMinute, perAccount: 0 })
  fastify.decorate('attemptLimits', {
    passwordCheck: budget('password', perMinute),
    signup: budget('signup', perMinute),
    oneTimeCode: budget('otp', { perIp: 0, perAccount: fastify.config.mfa.otpAttemptsPerUser, windowMs: 15 * 60_000 }),
    passkey: (request, step) => (step === 'options' ? passkeyOptions : passkeyGrants)(request, ''),
    email: budget('email', { perIp: email.rateLimitPerIpPerHour, perAccount: email.rateLimitPerAddressPerHour, windowMs: 3_600_000 }),
  } satisfies AttemptLimits)
}

export default fp(attemptLimits, { name: 'attempt-limits', dependencies: ['config', 'rate-limit', 'metrics'] })
