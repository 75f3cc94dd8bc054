import type { Prisma, PrismaClient } from '../generated/prisma/client.js'

export const AUDIT_EVENT_TYPES = [
  'user_signed_up',
  'login_succeeded',
  'login_failed',
  'refresh_token_reused',
  'refresh_token_replayed',
  'logged_out',
  'session_revoked',
  'password_changed',
  'password_change_failed',
  'api_key_created',
  'api_key_revoked',
  'role_changed',
  'user_disabled',
  'user_enabled',
  'password_reset_requested',
  'password_reset',
  'email_verified',
  'email_change_requested',
  'email_change_failed',
  'email_changed',
  'stepped_up',
  'step_up_failed',
  // Second factors (DESIGN §3.12).
  'login_mfa_required',
  'totp_enrolment_started',
  'totp_enabled',
  'totp_removed',
  'totp_removal_failed',
  'recovery_codes_regenerated',
  'recovery_code_used',
  'second_factor_failed',
  'second_factors_reset',
  'passkey_registered',
  'passkey_registration_failed',
  'passkey_renamed',
  'passkey_deleted',
  // A validly signed assertion whose signature counter did not increase: a possibly cloned authenticator.
  'passkey_counter_regressed',
  // The one-click link of a password-change notice removed the passkeys and API keys it listed.
  'credentials_removed_by_link',
] as const
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number]

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
