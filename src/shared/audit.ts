import { CATALOGUES } from '../features/catalogues.js'
import type { Prisma, PrismaClient } from '../generated/prisma/client.js'
import { oldestFirst, type RetentionTarget } from '../features/retention/targets.js'

type CatalogueEvents = Extract<(typeof CATALOGUES)[number], { auditEvents: readonly string[] }>['auditEvents'][number]

/** Every audit event type: each capability's (features/catalogues.ts). */
export const AUDIT_EVENT_TYPES = CATALOGUES.flatMap((catalogue) => ('auditEvents' in catalogue ? [...catalogue.auditEvents] : [])) as CatalogueEvents[]
export type AuditEventType = CatalogueEvents

/** The audit log's own retention (AUDIT_RETENTION_DAYS; 0 keeps every event). */
export const AUDIT_RETENTION = { name: 'auditEvents', kind: 'oldest', cutoff: (c) => c.auditEvents, statement: oldestFirst('audit_events', 'at') } as const satisfies RetentionTarget

export interface AuditEventInput {
  type: AuditEventType
  userId?: string | null | undefined
  actorId?: string | null | undefined
  ip?: string | null | undefined
  /** Identifiers and reasons only: never a secret (token, key, password). */
  details?: Prisma.InputJsonObject
}

/**
 * An audit event as the admin API shows it (GET /admin/audit-events) and a
 * webhook delivers it: the select list over `e` (audit_events), `u` (its
 * user) and `a` (its actor), joined by AUDIT_EVENT_VIEW_JOINS.
 */
export const AUDIT_EVENT_VIEW_COLUMNS =
  'e.id, e.type, e.user_id::text AS "userId", u.email AS "userEmail", e.actor_id::text AS "actorId", a.email AS "actorEmail", e.ip, e.at, e.details'
export const AUDIT_EVENT_VIEW_JOINS = 'LEFT JOIN users u ON u.id = e.user_id LEFT JOIN users a ON a.id = e.actor_id'

/** A row of AUDIT_EVENT_VIEW_COLUMNS as Postgres returns it. */
export interface AuditEventRow {
  id: bigint
  type: string
  userId: string | null
  userEmail: string | null
  actorId: string | null
  actorEmail: string | null
  ip: string | null
  at: Date
  details: unknown
}

/** The view of an audit event, its id as a string (JSON has no 64-bit integers). */
export function auditEventView (row: AuditEventRow) {
  return { ...row, id: row.id.toString() }
}

export async function recordAuditEvent (db: PrismaClient | Prisma.TransactionClient, event: AuditEventInput): Promise<void> {
  await db.auditEvent.create({
    data: {
      type: event.type,
      userId: event.userId ?? null,
      actorId: event.actorId ?? null,
      ip: event.ip ?? null,
      details: event.details ?? {},
    },
  })
}
