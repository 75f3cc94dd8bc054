import type { ClientConfig, Config, Transport } from '../config.js'
import type { Role } from '../generated/prisma/enums.js'
import type { SessionLifetimes } from './sessions.js'

/** The client a request names, the default one when it names none, or null when unknown. */
export function findClient(config: Config, clientId: string | undefined): ClientConfig | null {
  const id = clientId ?? config.defaultClientId
  return Object.hasOwn(config.clients, id) ? config.clients[id]! : null
}

/**
 * The transport a token response uses: the client's default, or the one the
 * request asks for with `Token-Transport` when the client allows it.
 */
export function chooseTransport(client: ClientConfig, requested: string | undefined): Transport | null {
  if (requested === undefined) return client.defaultTransport
  return (client.transports as string[]).includes(requested) ? (requested as Transport) : null
}

/** An admin's tokens get the admin client's shorter lifetimes, whatever client signed them in. */
export function lifetimesFor(config: Config, client: ClientConfig, role: Role): SessionLifetimes & { accessTokenTtlSeconds: number } {
  const admin = config.clients[config.adminClientId]
  const strictest = (pick: (c: ClientConfig) => number) =>
    role === 'admin' && admin ? Math.min(pick(client), pick(admin)) : pick(client)
  return {
    accessTokenTtlSeconds: strictest((c) => c.accessTokenTtlSeconds),
    idleTtlSeconds: strictest((c) => c.refreshIdleTtlSeconds),
    absoluteTtlSeconds: strictest((c) => c.refreshAbsoluteTtlSeconds),
  }
}

/** The longest access-token lifetime any client issues: how long revocations and retired keys must be remembered. */
export function maxAccessTokenTtlSeconds(config: Config): number {
  return Math.max(...Object.values(config.clients).map((c) => c.accessTokenTtlSeconds))
}
