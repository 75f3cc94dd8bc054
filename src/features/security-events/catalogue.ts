import { defineCatalogue } from '../catalogue.js'
import { before, DAY_MS, oldestFirst, sweep } from '../retention/targets.js'

/** How long a poll stream may go unpolled before retention deletes it (with its queued SETs). */
export const ABANDONED_STREAM_DAYS = 3
/** How long a delivered SET's row is kept (nothing reads it after delivery but a person diagnosing). */
const DELIVERED_SET_DAYS = 1
/** How long a SET that could not be delivered is kept, for whoever looks into a failing receiver. */
const DEAD_SET_DAYS = 7

export const securityEventsCatalogue = defineCatalogue({
  errors: {
    // SSF 1.0 §8.1.1: no stream with this id for this receiver (another receiver's streams are not found either);
    // a receiver's streams are bounded; a configuration the transmitter cannot take (a transmitter-supplied value
    // that does not match, a push endpoint the service may not reach); verification asked too often (§8.1.4.2).
    stream_not_found: 404,
    stream_limit: 409,
    invalid_stream_configuration: 400,
    verification_too_frequent: 429,
  },
  // Seals the Authorization header a push stream's receiver gave (SSF 1.0 §6.1.1).
  keyPurposes: ['ssfPushAuthorizationEncryption'],
  retention: [
    { name: 'securityEventsDelivered', kind: 'oldest', cutoff: (c) => before(c, DELIVERED_SET_DAYS * DAY_MS), statement: oldestFirst('security_events', 'delivered_at') },
    { name: 'securityEventsDead', kind: 'oldest', cutoff: (c) => before(c, DEAD_SET_DAYS * DAY_MS), statement: oldestFirst('security_events', 'dead_at') },
    // A poll stream nobody polls for days (its receiver crashed without deleting it), and any stream whose owner
    // can no longer receive (a deleted client, a demoted, disabled or deleted admin): its queued SETs go with it.
    {
      name: 'abandonedSsfStreams',
      kind: 'sweep',
      cutoff: (c) => before(c, ABANDONED_STREAM_DAYS * DAY_MS),
      statement: sweep(
        'ssf_streams',
        `((t.delivery_method = 'poll' AND COALESCE(t.last_polled_at, t.created_at) < $3)
          OR (t.owner_client_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM oauth_clients c WHERE c.id = t.owner_client_id AND 'client_credentials' = ANY (c.grant_types)))
          OR (t.owner_user_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM users u WHERE u.id = t.owner_user_id AND u.role = 'admin' AND NOT u.disabled)))`
      ),
    },
  ],
})
