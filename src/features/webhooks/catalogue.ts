import { defineCatalogue } from '../catalogue.js'
import { oldestFirst } from '../retention/targets.js'

/** Webhooks (DESIGN §3.18). */
export const webhooksCatalogue = defineCatalogue({
  errors: {
    webhook_not_found: 404,
    delivery_not_found: 404,
    // The URL is malformed, not http(s), or resolves to an address webhooks may not reach (SSRF).
    webhook_url_refused: 400,
    // A replay of more events than one request may queue.
    replay_too_large: 400,
  },
  auditEvents: ['webhook_created', 'webhook_updated', 'webhook_deleted', 'webhook_secret_rotated', 'webhook_disabled', 'webhook_replayed'],
  // Webhook signing secrets are needed in clear to sign: sealed, not hashed.
  keyPurposes: ['webhookSecretEncryption'],
  // Delivered and dead deliveries go with spent email (EMAIL_RETENTION_DAYS); their attempts with them.
  retention: [
    { name: 'webhookDelivered', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('webhook_deliveries', 'delivered_at') },
    { name: 'webhookDead', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('webhook_deliveries', 'dead_at') },
  ],
})
