import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'

/**
 * What this service must refuse, within one second and on every instance,
 * in an access token that verifies: its session was revoked, its user was disabled, or its user's role changed
 * after it was issued (even if the role has since changed back). Kept in
 * memory and synced from the database by polling, so the hot path costs two
 * map look-ups and a revocation on any instance reaches every instance within
 * one poll interval.
 *
 * Entries are kept as long as an access token issued before the change can
 * live (`retentionMs`), then forgotten.
 */
export class RevocationList {
  private readonly revokedSessions = new Map<string, number>()
  private readonly userStates = new Map<string, UserState>()
  private cursor: Date | null = null
  private lastSyncedAt = 0
  private readonly userChangeListeners: ((userId: string) => void)[] = []
  private readonly now: () => number

  constructor (
    private readonly db: PrismaClient,
    private readonly options: { retentionMs: number; now?: () => number }
  ) {
    this.now = options.now ?? Date.now
  }

  /**
   * Reads revocations since the last sync. The cursor steps back by an
   * overlap so that a change written with an earlier timestamp but committed
   * after the previous read is not missed.
   */
  async sync (): Promise<void> {
    const startedAt = this.now()
    const since = this.cursor ?? new Date(startedAt - this.options.retentionMs)
    const [sessions, users] = await Promise.all([
      this.db.session.findMany({ where: { revokedAt: { gte: since } }, select: { id: true, revokedAt: true } }),
      this.db.user.findMany({
        where: { authChangedAt: { gte: since } },
        select: { id: true, role: true, disabled: true, authChangedAt: true },
      }),
    ])
    for (const session of sessions) {
      this.revokedSessions.set(session.id, session.revokedAt!.getTime() + this.options.retentionMs)
    }
    for (const user of users) {
      const previous = this.userStates.get(user.id)
      this.userStates.set(user.id, this.userState(user.role, user.disabled, user.authChangedAt!))
      if (previous?.role !== user.role || previous.disabled !== user.disabled) this.notifyUserChanged(user.id)
    }
    this.prune(startedAt)
    // Two syncs can overlap (the timer's and a caller's): a slower, older one must not move either back.
    const cursor = startedAt - SYNC_OVERLAP_MS
    if (this.cursor === null || cursor > this.cursor.getTime()) this.cursor = new Date(cursor)
    this.lastSyncedAt = Math.max(this.lastSyncedAt, startedAt)
  }

  /** When the list last synced with the database (ms, this list's clock): the metrics' revocation lag. */
  get syncedAt (): number {
    return this.lastSyncedAt
  }

  /** True when the list may miss recent revocations because syncing has failed for a while. */
  isStale (maxAgeMs: number): boolean {
    return this.now() - this.lastSyncedAt > maxAgeMs
  }

  /** Records a revocation made by this instance at once, before the next sync. */
  sessionsRevoked (sessionIds: Iterable<string>): void {
    const keepUntil = this.now() + this.options.retentionMs
    for (const id of sessionIds) this.revokedSessions.set(id, keepUntil)
  }

  /** Records a change made by this instance at once; `changedAt` is what it wrote as users.auth_changed_at. */
  userChanged (userId: string, state: { role: Role; disabled: boolean; changedAt: Date }): void {
    this.userStates.set(userId, this.userState(state.role, state.disabled, state.changedAt))
    this.notifyUserChanged(userId)
  }

  private userState (role: Role, disabled: boolean, changedAt: Date): UserState {
    const at = changedAt.getTime()
    return { role, disabled, changedAtSeconds: Math.floor(at / 1000), keepUntil: at + this.options.retentionMs }
  }

  /** Calls `listener` on every role or disabled change seen, made here or synced from other instances. */
  onUserChange (listener: (userId: string) => void): void {
    this.userChangeListeners.push(listener)
  }

  private notifyUserChanged (userId: string): void {
    for (const listener of this.userChangeListeners) listener(userId)
  }

  /** Why a verified access token must still be refused, or null. */
  refusal (claims: { sid: string; sub: string; role: string; iat: number }): string | null {
    if (this.revokedSessions.has(claims.sid)) return 'session revoked'
    const user = this.userStates.get(claims.sub)
    if (user?.disabled) return 'user disabled'
    // iat has whole seconds: a token of the change's own second is judged by
    // its role claim alone, so one issued just after the change still works.
    if (user && (user.role !== claims.role || claims.iat < user.changedAtSeconds)) return 'role changed'
    return null
  }

  private prune (now: number): void {
    for (const [id, keepUntil] of this.revokedSessions) if (keepUntil < now) this.revokedSessions.delete(id)
    for (const [id, state] of this.userStates) if (state.keepUntil < now) this.userStates.delete(id)
  }
}

interface UserState {
  role: Role
  disabled: boolean
  /** users.auth_changed_at in whole seconds, comparable with a token's iat. */
  changedAtSeconds: number
  keepUntil: number
}

const SYNC_OVERLAP_MS = 5_000
