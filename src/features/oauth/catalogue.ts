import { defineCatalogue } from '../catalogue.js'
import { oldestFirst, HOUR_MS, before } from '../retention/targets.js'

/** The authorization server and OpenID provider (DESIGN §3.15). */
export const oauthCatalogue = defineCatalogue({
  errors: {
    grant_not_found: 404,
  },
  auditEvents: ['consent_granted', 'consent_revoked', 'authorization_code_reused', 'browser_session_ended'],
  keyPurposes: ['authorizationCodeHash', 'authorizationCodeAccount', 'authorizationRequest'],
  retention: [
    {
      // A spent or expired code is kept an hour, so a late second use is still recognised (and ends what the first began).
      name: 'authorizationCodes',
      kind: 'oldest',
      cutoff: (c) => before(c, HOUR_MS),
      statement: oldestFirst('authorization_codes', 'expires_at'),
    },
  ],
})
