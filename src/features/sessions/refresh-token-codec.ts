import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * The refresh token's format (DESIGN §3.5, §3.13), without storage.
 *
 * A token is base64url of 69 bytes:
 *
 *   version (1) | session id (16) | generation (4, big-endian) | secret (32) | MAC (16)
 *
 * - The secret is 256 random bits for a session's first token; each successor's
 *   is an HMAC of its parent's body under a server key, so the session row needs
 *   to hold only its live token's hash and generation, a retry inside the grace
 *   window can be answered with the very same successor, and no token is ever
 *   stored in a usable form.
 * - The MAC (HMAC-SHA-256 truncated to 128 bits, under its own server key)
 *   covers everything before it. A token that fails it is refused before any
 *   database read; one that passes was minted here, so an old generation of a
 *   known session is certainly a retired token of that session: reuse, however
 *   long ago it was retired. Without it, anyone who learnt a session id (it is
 *   the `sid` of every access token) could forge "an old token" and have the
 *   session revoked.
 */

export interface RefreshTokenKeys {
  /** Keys the MAC inside every token. */
  mac: Buffer
  /** Keys the hash of the live token kept on the session row. */
  hash: Buffer
  /** Derives a successor's secret from its parent. */
  successor: Buffer
}

export interface RefreshToken {
  /** The token as the client holds it. */
  token: string
  sessionId: string
  generation: number
}

const VERSION = 1
const BODY_BYTES = 1 + 16 + 4 + 32
const MAC_BYTES = 16
const TOKEN_BYTES = BODY_BYTES + MAC_BYTES
/** Generations are Postgres integers. */
const MAX_GENERATION = 2 ** 31 - 1

/** 69 bytes in base64url, no padding: 92 characters. */
export const REFRESH_TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3)
const TOKEN_REGEX = new RegExp(`^[A-Za-z0-9_-]{${REFRESH_TOKEN_LENGTH}}$`)

export class RefreshTokenCodec {
  constructor (private readonly keys: RefreshTokenKeys) {}

  /** A session's first token: a fresh random secret at generation 0. */
  first (sessionId: string): RefreshToken {
    return publicPart(this.seal(sessionId, 0, randomBytes(32)))
  }

  /**
   * The token `generations` rotations after `token` (1: its successor). The
   * same input always gives the same output: that is the grace window's
   * "same successor".
   */
  descendant (token: RefreshToken, generations = 1): RefreshToken {
    let current: RefreshToken & { body: Buffer } = { ...token, body: Buffer.from(token.token, 'base64url').subarray(0, BODY_BYTES) }
    for (let i = 0; i < generations; i++) {
      const secret = createHmac('sha256', this.keys.successor).update(current.body).digest()
      current = this.seal(token.sessionId, current.generation + 1, secret)
    }
    return publicPart(current)
  }

  /** The token's session and generation when it is well formed and its MAC is ours; null for anything else. */
  read (token: string): RefreshToken | null {
    if (!TOKEN_REGEX.test(token)) return null
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length !== TOKEN_BYTES || bytes[0] !== VERSION) return null
    const body = bytes.subarray(0, BODY_BYTES)
    if (!timingSafeEqual(this.mac(body), bytes.subarray(BODY_BYTES))) return null
    const generation = body.readUInt32BE(17)
    if (generation > MAX_GENERATION) return null
    return { token, sessionId: uuidOf(body.subarray(1, 17)), generation }
  }

  /** The keyed hash the session row holds of its live token. */
  hash (token: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(createHmac('sha256', this.keys.hash).update(token).digest())
  }

  private seal (sessionId: string, generation: number, secret: Buffer): RefreshToken & { body: Buffer } {
    if (generation > MAX_GENERATION) throw new RangeError('refresh token generation overflow')
    const body = Buffer.alloc(BODY_BYTES)
    body[0] = VERSION
    Buffer.from(sessionId.replaceAll('-', ''), 'hex').copy(body, 1)
    body.writeUInt32BE(generation, 17)
    secret.copy(body, 21, 0, 32)
    const token = Buffer.concat([body, this.mac(body)]).toString('base64url')
    return { token, sessionId, generation, body }
  }

  private mac (body: Buffer): Buffer {
    return createHmac('sha256', this.keys.mac).update(body).digest().subarray(0, MAC_BYTES)
  }
}

function publicPart ({ token, sessionId, generation }: RefreshToken): RefreshToken {
  return { token, sessionId, generation }
}

function uuidOf (bytes: Buffer): string {
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
