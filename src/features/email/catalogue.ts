import { defineCatalogue } from '../catalogue.js'
import { oldestFirst } from '../retention/targets.js'

export const emailCatalogue = defineCatalogue({
  // Encrypts the secret an outbox message carries until it is sent.
  keyPurposes: ['outboxSecretEncryption'],
  // A sent or dead message's secret is already erased; the row stays only for the admins' view of deliveries.
  retention: [
    { name: 'outboxSent', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('email_outbox', 'sent_at') },
    { name: 'outboxDead', kind: 'oldest', cutoff: (c) => c.spentEmail, statement: oldestFirst('email_outbox', 'dead_at') },
  ],
})
