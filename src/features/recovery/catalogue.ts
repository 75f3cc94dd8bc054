import { defineCatalogue } from '../catalogue.js'
import { oldestFirst } from '../retention/targets.js'

export const recoveryCatalogue = defineCatalogue({
  errors: {
    // DESIGN §3.11: a link secret expired, used, superseded, unknown or of another purpose; a reset of a disabled
    // user; nothing to verify; the password grant's answer under REQUIRE_EMAIL_VERIFICATION (an RFC 6749 §5.2 extension code).
    invalid_link_token: 400,
    user_disabled: 409,
    email_already_verified: 409,
    email_not_verified: 400,
  },
  auditEvents: [
    'password_reset_requested',
    'password_reset',
    'email_verified',
    'email_change_requested',
    'email_change_failed',
    'email_changed',
    // The one-click link of a password-change notice removed the passkeys and API keys it listed.
    'credentials_removed_by_link',
  ],
  // Keys the hashes of link secrets (account_tokens).
  keyPurposes: ['accountTokenHash'],
  // Link secrets are useless once used or expired; kept a while only so that a late click is told "already used"
  // or "expired" rather than "not valid".
  retention: [
    { name: 'accountTokensUsed', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('account_tokens', 'used_at') },
    { name: 'accountTokensExpired', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('account_tokens', 'expires_at') },
  ],
})
