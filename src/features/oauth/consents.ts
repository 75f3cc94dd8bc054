import type { Prisma, PrismaClient } from '../../generated/prisma/client.js'
import { DomainError } from '../../errors.js'
import { recordAuditEvent } from '../../shared/audit.js'

export interface ConsentSummary {
  clientId: string
  clientName: string
  scope: string
  createdAt: string
}

/**
 * What users allowed clients (OIDC Core §11, DESIGN §3.15): one grant per
 * user and client, widened by each consent. Stored consent to
 * offline_access is what lets later authorizations get a refresh token
 * without asking again.
 */
export class Consents {
  constructor (private readonly db: PrismaClient) {}

  /** The scopes `userId` has allowed `clientId`, or an empty list. */
  async granted (userId: string, clientId: string): Promise<string[]> {
    const row = await this.db.oauthGrant.findUnique({ where: { userId_clientId: { userId, clientId } }, select: { scope: true } })
    return row ? row.scope.split(' ').filter(Boolean) : []
  }

  /** Whether the user has allowed the client anything (a grant may hold no scope). */
  async exists (userId: string, clientId: string): Promise<boolean> {
    return (await this.db.oauthGrant.count({ where: { userId, clientId } })) > 0
  }

  /** Records the user's consent to `scopes` for the client, added to what they allowed before. */
  async grant (userId: string, clientId: string, scopes: string[], ip: string | undefined): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const current = await tx.oauthGrant.findUnique({ where: { userId_clientId: { userId, clientId } }, select: { scope: true } })
      const merged = [...new Set([...(current?.scope.split(' ').filter(Boolean) ?? []), ...scopes])].join(' ')
      await tx.oauthGrant.upsert({
        where: { userId_clientId: { userId, clientId } },
        create: { userId, clientId, scope: merged },
        update: { scope: merged },
      })
      await recordAuditEvent(tx, { type: 'consent_granted', userId, actorId: userId, ip, details: { clientId, scope: scopes.join(' ') } })
    })
  }

  async list (userId: string): Promise<ConsentSummary[]> {
    const rows = await this.db.oauthGrant.findMany({
      where: { userId },
      orderBy: { createdAt: 'desc' },
      select: { clientId: true, scope: true, createdAt: true, client: { select: { name: true } } },
    })
    return rows.map((row) => ({ clientId: row.clientId, clientName: row.client.name, scope: row.scope, createdAt: row.createdAt.toISOString() }))
  }

  /**
   * Withdraws a consent: the grant goes, and `revokeSessions` ends the
   * user's sessions of that client in the same transaction.
   */
  async revoke (
    input: { userId: string; clientId: string; actorId: string; ip?: string | undefined },
    revokeSessions: (tx: Prisma.TransactionClient) => Promise<string[]>
  ): Promise<void> {
    await this.db.$transaction(async (tx) => {
      const { count } = await tx.oauthGrant.deleteMany({ where: { userId: input.userId, clientId: input.clientId } })
      if (count === 0) throw new DomainError('grant_not_found', 'no app with access has this client id')
      const revoked = await revokeSessions(tx)
      await recordAuditEvent(tx, {
        type: 'consent_revoked',
        userId: input.userId,
        actorId: input.actorId,
        ip: input.ip,
        details: { clientId: input.clientId, revokedSessions: revoked.length },
      })
    })
  }
}
