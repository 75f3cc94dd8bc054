import type { Static } from 'typebox'
import { AuthClient } from '../../src/client/index.js'
import { askForStepUp, connectStepUp } from './step-up.js'
import type { AuditEvent as AuditEventSchema } from '../../src/schemas/admin.js'
import type { ApiKeySummary } from '../../src/schemas/api-keys.js'
import type { OutboxMessage as OutboxMessageSchema } from '../../src/schemas/email.js'
import type { Page } from '../../src/schemas/pagination.js'
import type { PublicUser, Session as SessionSchema } from '../../src/schemas/users.js'

/** The dashboard's one client: the `admin` client, cookie transport, same origin. */
export const client = new AuthClient({ clientId: 'admin', transport: 'cookie', requestedWith: 'token-auth-dashboard', onStepUpRequired: askForStepUp })
connectStepUp((proof) => ('passkey' in proof ? client.stepUpWithPasskey() : client.stepUp(proof)))

// The end-to-end tests drive refreshes through this handle. It gives a page
// script nothing it could not do with the same-origin API already.
;(window as unknown as { tokenAuthDashboard: unknown }).tokenAuthDashboard = { client }

/** What JSON makes of a value the service describes: Dates travel as RFC 3339 strings. */
type Json<T> = T extends Date ? string : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T

// The wire types are the service's own schemas, as JSON: a field changed there is changed here.
export type User = Json<PublicUser>
export type Session = Json<Static<typeof SessionSchema>>
export type AuditEvent = Json<AuditEventSchema>
export type ApiKey = Json<ApiKeySummary>
export type OutboxMessage = Json<OutboxMessageSchema>
export type { Page }

/** The event types the service writes: one list, shared with the service. */
export { AUDIT_EVENT_TYPES } from '../../src/domain/audit.js'

export function query (params: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, value)
  const text = search.toString()
  return text ? `?${text}` : ''
}
