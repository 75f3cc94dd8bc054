/** What the admin API answers, as JSON on the wire (dates as strings), for the admin tests. */

export interface AuditEvent {
  id: string
  type: string
  userId: string | null
  userEmail: string | null
  actorId: string | null
  actorEmail: string | null
  ip: string | null
  at: string
  details: Record<string, unknown>
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}
