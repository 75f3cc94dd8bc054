import type { Config } from '../../config.js'
import type { Role } from '../../generated/prisma/enums.js'
import type { SessionLifetimes } from '../sessions/sessions.js'

/** Where a client's refresh token travels (DESIGN §3.6): an HttpOnly cookie, or the response body. */
export type Transport = 'cookie' | 'body'

export interface ClientLifetimes {
  accessTokenTtlSeconds: number
  refreshIdleTtlSeconds: number
  refreshAbsoluteTtlSeconds: number
}

/** A public client (DESIGN §3.4): named by client_id, with its transports, scopes and token lifetimes. */
export interface ClientConfig extends ClientLifetimes {
  id: string
  /** Transport used when the request does not ask for one. */
  defaultTransport: Transport
  /** Transports the client may ask for with `Token-Transport`. */
  transports: Transport[]
  /** Scopes its tokens may carry; a token request without `scope` gets them all. */
  scopes: string[]
}

/** The client whose (shorter) lifetimes every admin gets. */
export const ADMIN_CLIENT_ID = 'admin'

/**
 * The first-party clients: the SPA (`web`) and the admin dashboard (`admin`)
 * in cookie transport, the mobile app (`mobile`) in body transport, which may
 * ask for the cookie.
 */
export function firstPartyClients (input: { scopes: string[]; user: ClientLifetimes; admin: ClientLifetimes }): Record<string, ClientConfig> {
  const { scopes } = input
  return {
    web: { id: 'web', defaultTransport: 'cookie', transports: ['cookie'], scopes, ...input.user },
    [ADMIN_CLIENT_ID]: { id: ADMIN_CLIENT_ID, defaultTransport: 'cookie', transports: ['cookie'], scopes, ...input.admin },
    mobile: { id: 'mobile', defaultTransport: 'body', transports: ['body', 'cookie'], scopes, ...input.user },
  }
}

/**
 * The transport a token response uses: the client's default, or the one the
 * request asks for with `Token-Transport` when the client allows it.
 */
export function chooseTransport (client: ClientConfig, requested: string | undefined): Transport | null {
  if (requested === undefined) return client.defaultTransport
  return (client.transports as string[]).includes(requested) ? (requested as Transport) : null
}

/** An admin's tokens get the admin client's shorter lifetimes, whatever client signed them in. */
export function lifetimesFor (config: Config, client: ClientConfig, role: Role): SessionLifetimes & { accessTokenTtlSeconds: number } {
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
export function maxAccessTokenTtlSeconds (config: Config): number {
  return Math.max(...Object.values(config.clients).map((c) => c.accessTokenTtlSeconds))
}
