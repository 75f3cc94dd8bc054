import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { PASSKEY_FACTOR_STORE, Passkeys } from './passkeys.js'
import { WebAuthnChallenges } from './webauthn-challenges.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Passkeys (features/passkeys/passkeys.ts): registration, sign-in, and for the
     * step-up grant `verifyForUser(userId, credential, ip)`.
     */
    passkeys: Passkeys
  }
}

async function passkeys (fastify: FastifyInstance) {
  const { config } = fastify
  const challenges = new WebAuthnChallenges(fastify.db, fastify.serverKeys.webauthnChallengeHash, fastify.now)
  fastify.decorate('passkeys', new Passkeys(fastify.db, challenges, config.webauthn, { sessions: fastify.sessions, notices: fastify.credentialNotices }, {
    now: fastify.now,
    requireEmailVerification: config.email.requireVerification,
    secondFactorChecked: (factor, accepted) => fastify.metrics.secondFactorChecked(factor, accepted),
  }))
  fastify.secondFactors.addStore(PASSKEY_FACTOR_STORE)
}

export default fp(passkeys, { name: 'passkeys', dependencies: ['config', 'database', 'outbox', 'sessions', 'second-factors', 'metrics'] })
