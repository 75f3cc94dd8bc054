import { AuthClient } from '../../src/client/index.js'

/** The dashboard's one client: the `admin` client, cookie transport, same origin. */
export const client = new AuthClient({ clientId: 'admin', transport: 'cookie', requestedWith: 'token-auth-dashboard' })

// The end-to-end tests drive refreshes through this handle. It gives a page
// script nothing it could not do with the same-origin API already.
;(window as unknown as { tokenAuthDashboard: unknown }).tokenAuthDashboard = { client }

export interface User {
  id: string
  email: string
  role: 'user' | 'admin'
  disabled: boolean
  createdAt: string
}
export interface Session {
  id: string
  clientId: string
  userAgent: string | null
  ip: string | null
  createdAt: string
  lastRefreshedAt: string
  idleExpiresAt: string
  absoluteExpiresAt: string
  current: boolean
}
export interface AuditEvent {
  id: string
  type: string
  userId: string | null
  actorId: string | null
  ip: string | null
  at: string
  details: unknown
}
export interface ApiKey {
  id: string
  prefix: string
  name: string
  scopes: string[]
  expiresAt: string | null
  createdAt: string
  lastUsedAt: string | null
}
export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** The event types the service writes: one list, shared with the service. */
export { AUDIT_EVENT_TYPES } from '../../src/domain/audit.js'

export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(name, value)
  const text = search.toString()
  return text ? `?${text}` : ''
}
