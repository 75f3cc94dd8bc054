import { randomBytes } from 'node:crypto'
import type { PrismaClient } from '../../generated/prisma/client.js'
import type { WebauthnChallengePurpose } from '../../generated/prisma/enums.js'
import { hmacSha256 } from '../../shared/derived-keys.js'

/**
 * The challenges of WebAuthn ceremonies (W3C WebAuthn Level 3 §13.4.3): made
 * here from 32 random bytes, never by the client; stored only as a keyed
 * hash; short-lived; single use. A ceremony's response carries its challenge
 * in clientDataJSON, so the row is found by the challenge itself and no
 * separate id travels with it.
 */

/** How long a ceremony may take, from the options to the response. */
export const CHALLENGE_TTL_SECONDS = 300

export class WebAuthnChallenges {
  constructor (
    private readonly db: PrismaClient,
    private readonly hashKey: Buffer,
    private readonly now: () => number
  ) {}

  private hash (challenge: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.hashKey, challenge))
  }

  /**
   * A new challenge (base64url) for `purpose`, bound to `userId` when the
   * ceremony is for a signed-in user. Such a user's earlier unspent challenge
   * of the same purpose is dropped: one ceremony of each kind at a time, and
   * no user can pile rows up.
   */
  async issue (purpose: WebauthnChallengePurpose, userId: string | null): Promise<string> {
    const challenge = randomBytes(32).toString('base64url')
    const now = this.now()
    if (userId !== null) await this.db.webauthnChallenge.deleteMany({ where: { userId, purpose } })
    await this.db.webauthnChallenge.create({
      data: {
        challengeHash: this.hash(challenge),
        purpose,
        userId,
        expiresAt: new Date(now + CHALLENGE_TTL_SECONDS * 1000),
        createdAt: new Date(now),
      },
    })
    return challenge
  }

  /**
   * Spends a challenge: true if it was issued for this purpose (and this
   * user, or no user) and has not expired. One DELETE, so of any number of
   * concurrent responses carrying one challenge exactly one spends it.
   * A presentation with the wrong purpose or user spends nothing.
   */
  async spend (challenge: string, purpose: WebauthnChallengePurpose, userId: string | null): Promise<boolean> {
    const { count } = await this.db.webauthnChallenge.deleteMany({
      where: { challengeHash: this.hash(challenge), purpose, userId, expiresAt: { gt: new Date(this.now()) } },
    })
    return count === 1
  }
}
