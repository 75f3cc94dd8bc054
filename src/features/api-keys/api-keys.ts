import { randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { Role } from '../../generated/prisma/enums.js'
import { DomainError } from '../../errors.js'
import type { ApiKeySummary, CreatedApiKey } from './schemas.js'
import { recordAuditEvent } from '../../shared/audit.js'
import type { CredentialNotices } from '../email/credential-notices.js'
import { createdBefore, decodeCursor, isCreatedCursor, pageOf } from '../../shared/pagination.js'
import type { Page } from '../../shared/pagination-schemas.js'
import { hmacSha256 } from '../../shared/derived-keys.js'

/** The scope that lets a platform service call /auth/introspect; only admins may grant it. */
export const INTROSPECT_SCOPE = 'introspect'
/** The scope that lets a platform service manage and poll its security-event streams (DESIGN §3.18); only admins may grant it to a key. */
export const EVENTS_SCOPE = 'events'
/** The scopes of a platform service's key, which only an admin may grant. */
export const ADMIN_KEY_SCOPES = [INTROSPECT_SCOPE, EVENTS_SCOPE] as const

/**
 * Third-party API keys (DESIGN §3.7): `tak_` + 43 base62 characters of
 * randomness (256 bits) + 6 base62 characters of CRC-32 over the rest. The
 * fixed prefix lets secret scanners find leaked keys; the checksum refuses a
 * mistyped key before any database look-up. Stored only as an HMAC.
 */
export const API_KEY_PREFIX = 'tak_'
const BODY_LENGTH = 43
const CHECKSUM_LENGTH = 6
export const API_KEY_PATTERN = `^${API_KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`
const API_KEY_REGEX = new RegExp(API_KEY_PATTERN)
/** How much of a key is kept in clear to tell keys apart in lists. */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 8
/** last_used_at is written at most this often per key, not on every request. */
const LAST_USED_WRITE_INTERVAL_MS = 60_000

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

function base62 (value: bigint, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) {
    out = BASE62[Number(value % 62n)] + out
    value /= 62n
  }
  return out
}

function checksum (text: string): string {
  return base62(BigInt(crc32(text)), CHECKSUM_LENGTH)
}

export function generateApiKey (): string {
  // 256 random bits fit in 43 base62 characters (62^43 > 2^256).
  const body = base62(BigInt('0x' + randomBytes(32).toString('hex')), BODY_LENGTH)
  const withoutChecksum = API_KEY_PREFIX + body
  return withoutChecksum + checksum(withoutChecksum)
}

/** True when the string has the key format and a matching checksum: worth a look-up. */
export function isWellFormedApiKey (key: string): boolean {
  if (!API_KEY_REGEX.test(key)) return false
  const cut = key.length - CHECKSUM_LENGTH
  return checksum(key.slice(0, cut)) === key.slice(cut)
}

/** Whether a credential claims to be an API key (and so must not be tried as a JWT). */
export function looksLikeApiKey (credential: string): boolean {
  return credential.startsWith(API_KEY_PREFIX)
}

export interface ApiKeyPrincipal {
  apiKeyId: string
  userId: string
  role: Role
  scopes: string[]
  expiresAt: Date | null
}

const CREATED_SELECT = { id: true, name: true, prefix: true, scopes: true, expiresAt: true, createdAt: true } as const
const SUMMARY_SELECT = { ...CREATED_SELECT, lastUsedAt: true } as const

export class ApiKeyStore {
  private readonly lastUsedWrites = new Map<string, number>()
  private readonly now: () => number
  private readonly limitPerUser: number
  private readonly notices: CredentialNotices | undefined

  constructor (
    private readonly db: PrismaClient,
    private readonly hashKey: Buffer,
    options: {
      now?: () => number
      limitPerUser?: number
      /** Announces each new key to its owner's address (ASVS 5.0 V6.3.7). */
      notices?: CredentialNotices
    } = {}
  ) {
    this.notices = options.notices
    this.now = options.now ?? Date.now
    this.limitPerUser = options.limitPerUser ?? 100
  }

  private hash (key: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, key))
  }

  async create (input: {
    userId: string
    name: string
    scopes: string[]
    expiresAt: Date | null
    ip?: string
  }): Promise<CreatedApiKey> {
    const key = generateApiKey()
    const now = new Date(this.now())
    const created = await this.db.$transaction(async (tx) => {
      // Concurrent creations by one user queue on the user's row, so each
      // counts the keys the others committed: no check-then-insert race past
      // the limit. NO KEY UPDATE does not block the key-share locks that
      // inserts referencing the user (sessions, audit events) take.
      const [owner] = await tx.$queryRaw<{ email_verified_at: Date | null }[]>`SELECT email_verified_at FROM users WHERE id = ${input.userId}::uuid FOR NO KEY UPDATE`
      // A key acts without the password: nobody adds one to an account whose address nobody has proven (account pre-hijacking).
      if (owner && owner.email_verified_at === null) {
        throw new DomainError('email_verification_required', 'confirm your email address before creating an API key: open the link we sent, or ask for a new one')
      }
      const live = await tx.apiKey.count({
        where: { userId: input.userId, revokedAt: null, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] },
      })
      if (live >= this.limitPerUser) throw new DomainError('api_key_limit', `at most ${this.limitPerUser} live API keys per user: revoke one first`)
      const row = await tx.apiKey.create({
        data: {
          userId: input.userId,
          name: input.name,
          prefix: key.slice(0, DISPLAY_PREFIX_LENGTH),
          keyHash: this.hash(key),
          scopes: [...new Set(input.scopes)],
          expiresAt: input.expiresAt,
          createdAt: now,
        },
        select: CREATED_SELECT,
      })
      await recordAuditEvent(tx, {
        type: 'api_key_created',
        userId: input.userId,
        actorId: input.userId,
        ip: input.ip,
        details: { apiKeyId: row.id, prefix: row.prefix, scopes: row.scopes },
      })
      await this.notices?.added(tx, { userId: input.userId, kind: 'api_key', name: `${row.name} (${row.prefix}…)` })
      return row
    })
    this.notices?.committed()
    return { ...created, key }
  }

  /**
   * One page of the user's keys that are not revoked (expired ones included,
   * so their owner sees them), newest first; no secrets. Throws
   * invalid_cursor for a cursor this list did not hand out.
   */
  async list (userId: string, options: { limit: number; cursor?: string | undefined }): Promise<Page<ApiKeySummary>> {
    const after = options.cursor ? decodeCursor(options.cursor, isCreatedCursor) : undefined
    const rows = await this.db.apiKey.findMany({
      where: { userId, revokedAt: null, ...(after ? createdBefore(after) : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: options.limit + 1,
      select: SUMMARY_SELECT,
    })
    return pageOf(rows, options.limit)
  }

  /** Revokes one of the user's keys; false when there is no such live key. */
  async revoke (input: {
    userId: string
    apiKeyId: string
    /** Who revoked it; null when unknown (anyone holding the key may revoke it through RFC 7009). */
    actorId: string | null
    ip?: string
    via?: 'revocation_endpoint'
  }): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const revoked = await tx.apiKey.updateMany({
        where: { id: input.apiKeyId, userId: input.userId, revokedAt: null },
        data: { revokedAt: new Date(this.now()) },
      })
      if (revoked.count === 0) return false
      await recordAuditEvent(tx, {
        type: 'api_key_revoked',
        userId: input.userId,
        actorId: input.actorId,
        ip: input.ip,
        details: { apiKeyId: input.apiKeyId, ...(input.via ? { via: input.via } : {}) },
      })
      return true
    })
  }

  /**
   * Revokes a key by its value (RFC 7009); true when a live key was revoked.
   * The presenter is not authenticated (a leaked key is best revoked by
   * whoever finds it), so the audit event names no actor rather than the owner.
   */
  async revokeByValue (key: string, ip?: string): Promise<boolean> {
    const principal = await this.verify(key, { touch: false })
    if (!principal) return false
    return this.revoke({
      userId: principal.userId,
      apiKeyId: principal.apiKeyId,
      actorId: null,
      via: 'revocation_endpoint',
      ...(ip ? { ip } : {}),
    })
  }

  /**
   * The principal of a live key, or null. A malformed key or a bad checksum
   * is refused without touching the database. Revocation and expiry count at
   * once: there is no cache of positive answers.
   */
  async verify (key: string, options: { touch?: boolean } = {}): Promise<ApiKeyPrincipal | null> {
    if (!isWellFormedApiKey(key)) return null
    const row = await this.db.apiKey.findUnique({
      where: { keyHash: this.hash(key) },
      select: { id: true, userId: true, scopes: true, expiresAt: true, revokedAt: true, user: { select: { role: true, disabled: true } } },
    })
    const now = this.now()
    if (!row || row.revokedAt || row.user.disabled || (row.expiresAt && row.expiresAt.getTime() <= now)) return null
    if (options.touch !== false) this.touch(row.id, now)
    return { apiKeyId: row.id, userId: row.userId, role: row.user.role, scopes: row.scopes, expiresAt: row.expiresAt }
  }

  private touch (apiKeyId: string, now: number): void {
    const last = this.lastUsedWrites.get(apiKeyId)
    if (last !== undefined && now - last < LAST_USED_WRITE_INTERVAL_MS) return
    this.lastUsedWrites.set(apiKeyId, now)
    if (this.lastUsedWrites.size > 100_000) this.lastUsedWrites.clear()
    void this.db.apiKey.update({ where: { id: apiKeyId }, data: { lastUsedAt: new Date(now) } }).catch(() => {})
  }
}
