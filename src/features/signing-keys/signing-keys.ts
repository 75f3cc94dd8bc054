import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { JwkSet, PublicJwk } from './schemas.js'
import { seal, unseal } from '../../shared/derived-keys.js'

/** One algorithm for every key: verifiers pin it (RFC 8725 §3.1). */
export const SIGNING_ALG = 'ES256'

interface LoadedKey {
  kid: string
  publicJwk: PublicJwk
  publicPem: string
  activatesAt: number
  retiredAt: number | null
  expiresAt: number | null
  encrypted: Uint8Array
  privateKey?: KeyObject
}

export interface KeyStoreOptions {
  /** AES-256-GCM key for the private halves at rest. */
  encryptionKey: Buffer
  /** How long a new key is published before it signs; longer than any JWKS cache. */
  publishLeadSeconds: number
  /** The longest access-token lifetime: a retired key stays published this long (plus skew). */
  maxAccessTokenTtlSeconds: number
  now?: () => number
}

/** Tolerance for clocks of verifiers that run a little behind ours. */
const CLOCK_SKEW_MS = 60_000
/** Any number, the same on every instance: serialises key creation. */
const KEY_CREATION_LOCK = 4_242_001

/**
 * Signing keys shared by every instance through the database. Rotation follows
 * DESIGN §3.1: a new key is published `publishLeadSeconds` before it signs, and
 * a retired key stays published until every token it signed has expired.
 */
export class KeyStore {
  private keys = new Map<string, LoadedKey>()
  private readonly now: () => number

  constructor (
    private readonly db: PrismaClient,
    private readonly options: KeyStoreOptions
  ) {
    this.now = options.now ?? Date.now
  }

  /** Reads the published keys from the database into memory. */
  async load (): Promise<void> {
    const rows = await this.db.signingKey.findMany({
      where: { OR: [{ expiresAt: null }, { expiresAt: { gt: new Date(this.now()) } }] },
    })
    const next = new Map<string, LoadedKey>()
    for (const row of rows) {
      const previous = this.keys.get(row.kid)
      const publicJwk = row.publicJwk as unknown as PublicJwk
      next.set(row.kid, {
        kid: row.kid,
        publicJwk,
        publicPem: previous?.publicPem ?? toPem(publicJwk),
        activatesAt: row.activatesAt.getTime(),
        retiredAt: row.retiredAt?.getTime() ?? null,
        expiresAt: row.expiresAt?.getTime() ?? null,
        encrypted: row.privateKeyEncrypted,
        ...(previous?.privateKey ? { privateKey: previous.privateKey } : {}),
      })
    }
    this.keys = next
  }

  /** Creates a key that signs at once when none can sign now (first start). */
  async ensureSigningKey (): Promise<void> {
    await this.load()
    if (this.currentKey()) return
    await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_CREATION_LOCK})`
      const now = new Date(this.now())
      const usable = await tx.signingKey.count({
        where: { activatesAt: { lte: now }, OR: [{ retiredAt: null }, { retiredAt: { gt: now } }] },
      })
      if (usable === 0) await tx.signingKey.create({ data: await this.newKeyRow(now) })
    })
    await this.load()
  }

  /**
   * Publishes a new key now that starts signing after the publish lead time,
   * and schedules the current keys to retire at that moment.
   */
  async rotate (): Promise<{ kid: string; activatesAt: Date }> {
    const activatesAt = new Date(this.now() + this.options.publishLeadSeconds * 1000)
    const expiresAt = new Date(activatesAt.getTime() + this.options.maxAccessTokenTtlSeconds * 1000 + CLOCK_SKEW_MS)
    const row = await this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_CREATION_LOCK})`
      await tx.signingKey.updateMany({
        where: { OR: [{ retiredAt: null }, { retiredAt: { gt: activatesAt } }] },
        data: { retiredAt: activatesAt, expiresAt },
      })
      return tx.signingKey.create({ data: await this.newKeyRow(activatesAt) })
    })
    await this.load()
    return { kid: row.kid, activatesAt: row.activatesAt }
  }

  /** The public keys verifiers must know: every key not yet expired. */
  jwks (): JwkSet {
    const now = this.now()
    return {
      keys: [...this.keys.values()]
        .filter((key) => key.expiresAt === null || key.expiresAt > now)
        .sort((a, b) => b.activatesAt - a.activatesAt)
        .map((key) => key.publicJwk),
    }
  }

  /** PEM of a published key, for the request-side verifier; undefined when unknown. */
  publicKeyPem (kid: string): string | undefined {
    const key = this.keys.get(kid)
    if (!key || (key.expiresAt !== null && key.expiresAt <= this.now())) return undefined
    return key.publicPem
  }

  /**
   * Signs a JWT (JWS compact serialization, RFC 7515 §7.1) with the key that
   * signs now. node:crypto signs synchronously with the KeyObject; jose's
   * SignJWT goes through WebCrypto, which on Node 20 costs about three times
   * the CPU per ES256 signature (README.md, dependency notes). Verifiers in the tests
   * (jose, oauth4webapi, fast-jwt) check what this produces.
   */
  sign (claims: JWTPayload, header: { typ: string }): string {
    const key = this.currentKey()
    if (!key) throw new Error('no signing key is active; was ensureSigningKey() run?')
    key.privateKey ??= this.decryptPrivateKey(key)
    const input = `${base64urlJson({ alg: SIGNING_ALG, kid: key.kid, typ: header.typ })}.${base64urlJson(claims)}`
    // JWS ECDSA signatures are R || S (RFC 7518 §3.4), not DER.
    const signature = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    return `${input}.${signature.toString('base64url')}`
  }

  /** The newest key whose signing period has begun and not ended. */
  currentKey (): LoadedKey | undefined {
    const now = this.now()
    let best: LoadedKey | undefined
    for (const key of this.keys.values()) {
      if (key.activatesAt > now || (key.retiredAt !== null && key.retiredAt <= now)) continue
      if (!best || key.activatesAt > best.activatesAt) best = key
    }
    return best
  }

  private async newKeyRow (activatesAt: Date) {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true })
    const { kty, crv, x, y } = await exportJWK(publicKey)
    const kid = await calculateJwkThumbprint({ kty, crv, x, y })
    const privateJwk = await exportJWK(privateKey)
    return {
      kid,
      alg: SIGNING_ALG,
      publicJwk: { kty, crv, x, y, kid, alg: SIGNING_ALG, use: 'sig' } as PublicJwk,
      // The kid is the associated data: a ciphertext cannot be moved to another key's row.
      privateKeyEncrypted: seal(this.options.encryptionKey, Buffer.from(JSON.stringify(privateJwk)), kid),
      activatesAt,
    }
  }

  private decryptPrivateKey (key: LoadedKey): KeyObject {
    const jwk = JSON.parse(unseal(this.options.encryptionKey, key.encrypted, key.kid).toString('utf8')) as JWK
    return createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' })
  }
}

function base64urlJson (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function toPem (jwk: PublicJwk): string {
  const { kty, crv, x, y } = jwk
  return createPublicKey({ key: { kty, crv, x, y } as import('node:crypto').JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString()
}
