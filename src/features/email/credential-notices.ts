import type { Prisma } from '../../generated/prisma/client.js'
import type { Outbox } from './outbox.js'

/**
 * "A new way into your account was added": every passkey, authenticator app
 * and API key is announced to the account's address, in the transaction
 * that adds it (ASVS 5.0 V6.3.7: users are told of changes to their
 * authentication). The message names the credential and points at the
 * security page, where its owner can remove it.
 */

export type CredentialKind = 'passkey' | 'totp' | 'api_key'

const KIND_NAMES: Record<CredentialKind, string> = { passkey: 'passkey', totp: 'authenticator app', api_key: 'API key' }

/** How a notice names a credential: its kind, and its name when it has one ("passkey “YubiKey 5”"). */
export function describeCredential (kind: CredentialKind, name?: string): string {
  return name === undefined ? KIND_NAMES[kind] : `${KIND_NAMES[kind]} “${name}”`
}

export class CredentialNotices {
  constructor (
    private readonly outbox: Outbox,
    private readonly options: {
      securityPageUrl: string
      /** Told after a transaction that queued a notice commits (the local worker sends at once). */
      mailQueued: () => void
    }
  ) {}

  /** Queues the notice of a credential added to `userId`'s account, in the caller's transaction. */
  async added (tx: Prisma.TransactionClient, input: { userId: string; kind: CredentialKind; name?: string }): Promise<void> {
    const { email } = await tx.user.findUniqueOrThrow({ where: { id: input.userId }, select: { email: true } })
    await this.outbox.enqueue(tx, {
      recipient: email,
      template: 'credential_added',
      data: { email, credential: describeCredential(input.kind, input.name), securityUrl: this.options.securityPageUrl },
    })
  }

  /** Call once the transaction of `added` committed. */
  committed (): void {
    this.options.mailQueued()
  }
}
