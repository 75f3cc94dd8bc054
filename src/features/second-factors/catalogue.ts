import { defineCatalogue } from '../catalogue.js'
import { before, HOUR_MS, oldestFirst, sweep } from '../retention/targets.js'

export const secondFactorsCatalogue = defineCatalogue({
  errors: {
    // DESIGN §3.12: the password grant's answer for an account with a factor (an RFC 6749 §5.2 extension code),
    // a wrong code at enrolment, a factor already there or not there.
    mfa_required: 400,
    invalid_otp: 400,
    totp_already_enabled: 409,
    totp_not_enrolled: 404,
  },
  auditEvents: [
    'login_mfa_required',
    'totp_enrolment_started',
    'totp_enabled',
    'totp_removed',
    'totp_removal_failed',
    'recovery_codes_regenerated',
    'recovery_code_used',
    'second_factor_failed',
    'second_factors_reset',
  ],
  // TOTP secrets at rest (bound to the user id); the hashes of backup codes; the hashes of login challenges
  // (mfa_tokens) and of the password hash each one remembers.
  keyPurposes: ['totpSecretEncryption', 'recoveryCodeHash', 'mfaTokenHash'],
  // A login's second-step token is dead once used or expired (5 minutes); an hour's margin lets a late attempt be
  // told why. A TOTP enrolment never confirmed is void after an hour (totp-factors.ts PENDING_ENROLMENT_TTL_MS):
  // a sweep, the table is one row per user.
  retention: [
    { name: 'mfaTokensUsed', kind: 'oldest', cutoff: (c) => before(c, HOUR_MS), statement: oldestFirst('mfa_tokens', 'used_at') },
    { name: 'mfaTokensExpired', kind: 'oldest', cutoff: (c) => before(c, HOUR_MS), statement: oldestFirst('mfa_tokens', 'expires_at') },
    { name: 'pendingTotpEnrolments', kind: 'sweep', cutoff: (c) => before(c, HOUR_MS), statement: sweep('totp_factors', 't.confirmed_at IS NULL AND t.created_at < $3') },
  ],
})
