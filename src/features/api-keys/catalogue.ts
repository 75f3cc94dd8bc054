import { defineCatalogue } from '../catalogue.js'
import { sweep } from '../retention/targets.js'

export const apiKeysCatalogue = defineCatalogue({
  errors: { api_key_limit: 409, api_key_not_found: 404, invalid_expiry: 400 },
  auditEvents: ['api_key_created', 'api_key_revoked'],
  keyPurposes: ['apiKeyHash'],
  retention: [
    {
      name: 'apiKeys',
      kind: 'sweep',
      cutoff: (c) => c.deadSessions,
      statement: sweep('api_keys', 'LEAST(COALESCE(t.revoked_at, \'infinity\'), COALESCE(t.expires_at, \'infinity\')) < $3'),
    },
  ],
})
