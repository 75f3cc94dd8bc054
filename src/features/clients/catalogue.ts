import { defineCatalogue } from '../catalogue.js'

/** Clients (DESIGN §3.14): RFC 7591 §3.2.2's registration errors, and the admin API's own. */
export const clientsCatalogue = defineCatalogue({
  errors: {
    invalid_redirect_uri: 400,
    invalid_client_metadata: 400,
    client_not_found: 404,
    // The seeded first-party clients are configuration's: they are edited, never deleted.
    client_configured: 409,
    // RFC 6749 §5.2: a client may not use a grant it is not registered for.
    unauthorized_client: 400,
  },
  auditEvents: ['client_created', 'client_updated', 'client_deleted', 'client_secret_rotated', 'client_token_issued'],
  keyPurposes: ['clientSecretHash'],
})
