import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { LoginChallenges } from './login-challenges.js'
import { BackupCodes } from './backup-codes.js'
import { SecondFactors } from './second-factors.js'
import { TotpFactors } from './totp-factors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * TOTP, recovery codes and a login's second step (features/second-factors/second-factors.ts).
     * For the step-up grant: `hasSecondFactor(userId)` and
     * `verifyOneTimeCode(userId, { otp } | { recoveryCode }, { ip, purpose, spendAttempt })`,
     * which spends the code (its time step, or the recovery code) as a login does, audited and budgeted.
     */
    secondFactors: SecondFactors
  }
}

async function secondFactors (fastify: FastifyInstance) {
  const { config, serverKeys } = fastify
  const service = new SecondFactors(
    fastify.db,
    {
      totp: new TotpFactors(serverKeys.totpSecretEncryption, { issuer: config.mfa.totpIssuer, now: fastify.now }),
      backupCodes: new BackupCodes(serverKeys.recoveryCodeHash),
      loginChallenges: new LoginChallenges(serverKeys.mfaTokenHash, fastify.now),
      outbox: fastify.outbox,
      passwords: fastify.passwordHasher,
      notices: fastify.credentialNotices,
    },
    {
      now: fastify.now,
      mailQueued: () => fastify.mailDelivery?.kick(),
      secondFactorChecked: (factor, accepted) => fastify.metrics.secondFactorChecked(factor, accepted),
    }
  )
  fastify.decorate('secondFactors', service)
}

export default fp(secondFactors, { name: 'second-factors', dependencies: ['config', 'database', 'outbox', 'mail-delivery', 'accounts', 'metrics'] })
