import { defineCatalogue } from '../catalogue.js'
import { sweep } from '../retention/targets.js'

export const sessionsCatalogue = defineCatalogue({
  errors: { session_not_found: 404 },
  auditEvents: ['refresh_token_reused', 'refresh_token_replayed', 'logged_out', 'session_revoked', 'stepped_up', 'step_up_failed'],
  // The refresh-token family of a session: its hash, its successor's derivation, the MAC a token carries (refresh-token-codec.ts).
  keyPurposes: ['refreshTokenHash', 'refreshTokenSuccessor', 'refreshTokenMac'],
  retention: [
    // Deleting a session takes nothing that a live session or the audit view
    // shows: audit events name sessions in their details, without a foreign
    // key, and outlive them.
    {
      name: 'sessions',
      kind: 'sweep',
      cutoff: (c) => c.deadSessions,
      statement: sweep('sessions', 'LEAST(COALESCE(t.revoked_at, \'infinity\'), t.idle_expires_at, t.absolute_expires_at) < $3'),
    },
  ],
})
