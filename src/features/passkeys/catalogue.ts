import { defineCatalogue } from '../catalogue.js'
import { oldestFirst } from '../retention/targets.js'

export const passkeysCatalogue = defineCatalogue({
  errors: {
    // DESIGN §3.12: a challenge unknown, spent, expired or of another user or purpose; a response that does not
    // verify; an unknown passkey id; a credential already registered; the per-user bound.
    passkey_challenge_invalid: 400,
    passkey_rejected: 400,
    passkey_not_found: 404,
    passkey_exists: 409,
    passkey_limit: 409,
  },
  auditEvents: [
    'passkey_registered',
    'passkey_registration_failed',
    'passkey_renamed',
    'passkey_deleted',
    // A validly signed assertion whose signature counter did not increase: a possibly cloned authenticator.
    'passkey_counter_regressed',
  ],
  // Keys the hashes of WebAuthn challenges.
  keyPurposes: ['webauthnChallengeHash'],
  // A spent challenge is deleted by the request that spends it, an expired one here.
  retention: [
    { name: 'webauthnChallengesExpired', kind: 'oldest', cutoff: (c) => c.now, statement: oldestFirst('webauthn_challenges', 'expires_at') },
  ],
})
