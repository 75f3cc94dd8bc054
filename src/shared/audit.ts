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
