import { randomBytes, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { DomainError } from '../../errors.js'
import type { OauthClient, PrismaClient } from '../../generated/prisma/client.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { hmacSha256 } from '../../shared/derived-keys.js'
import { EVENTS_SCOPE } from '../api-keys/api-keys.js'
import type { ClientConfig, ClientLifetimes } from '../tokens/clients.js'
import { matchesRedirectUri, redirectUriProblem, type ApplicationType } from './redirect-uris.js'

/** RFC 7591 §2 token_endpoint_auth_method: none for a public client, a secret for a confidential one. */
export type TokenEndpointAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post'

/** The scopes of OpenID Connect (OIDC Core §5.4, §11): every client may ask for them. */
export const OPENID_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const

/** Scopes of a service acting for itself (client_credentials): its security-event streams (DESIGN §3.18). */
export const SERVICE_SCOPES = [EVENTS_SCOPE] as const

/** Grants a client may be registered for; the password grant's family is for first-party clients only. */
export const REGISTRABLE_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const

/** A client as every part of the service sees it: its registration and, for the token endpoint, its transports and lifetimes. */
export interface Client extends ClientConfig {
  name: string
  authMethod: TokenEndpointAuthMethod
  confidential: boolean
  firstParty: boolean
  applicationType: ApplicationType
  redirectUris: string[]
  postLogoutRedirectUris: string[]
  grantTypes: string[]
  logoUri: string | null
  clientUri: string | null
  /** Seeded from configuration (web, admin, mobile): cannot be deleted. */
  configured: boolean
  /** The keyed hash of a confidential client's secret (never answered). */
  secretHash: Buffer | null
  createdAt: Date
  updatedAt: Date
}

/** RFC 7591 client metadata an admin registers or changes (DESIGN §3.14). */
export interface ClientMetadata {
  client_name: string
  redirect_uris: string[]
  post_logout_redirect_uris?: string[] | undefined
  grant_types?: string[] | undefined
  scope?: string | undefined
  token_endpoint_auth_method?: TokenEndpointAuthMethod | undefined
  application_type?: ApplicationType | undefined
  first_party?: boolean | undefined
  logo_uri?: string | undefined
  client_uri?: string | undefined
}

export interface ClientRegistryOptions {
  /** The first-party clients of configuration (DESIGN §3.4), seeded at start. */
  configured: Record<string, ClientConfig>
  /** The API scopes a client may be given (SCOPES). */
  apiScopes: string[]
  /** What a registered client's tokens live: the users' lifetimes of configuration. */
  lifetimes: ClientLifetimes
  /** Every grant of the token endpoint (what a seeded first-party client may use). */
  grantTypes: readonly string[]
  now?: () => number
}

const CONFIGURED_NAMES: Record<string, string> = { web: 'Web app', admin: 'Admin dashboard', mobile: 'Mobile app' }
/** Registrations change seldom; an instance sees another's change within this long (a deletion also revokes at once). */
const CLIENT_CACHE_TTL_MS = 5_000
const CLIENT_SECRET_PREFIX = 'tacs_'

/**
 * The clients (DESIGN §3.14): rows of `oauth_clients`, read through a short
 * cache because the token endpoint looks its client up on every request.
 * Secrets are shown once and kept as keyed hashes.
 */
export class ClientRegistry {
  private readonly cache = new LRUCache<string, { client: Client | null }>({ max: 10_000, ttl: CLIENT_CACHE_TTL_MS })

  constructor (
    private readonly db: PrismaClient,
    private readonly secretKey: Buffer,
    private readonly options: ClientRegistryOptions
  ) {}

  /** Creates the configured first-party clients that are missing, and marks them as configuration's. */
  async seed (): Promise<void> {
    for (const config of Object.values(this.options.configured)) {
      await this.db.oauthClient.upsert({
        where: { id: config.id },
        create: {
          id: config.id,
          name: CONFIGURED_NAMES[config.id] ?? config.id,
          tokenEndpointAuthMethod: 'none',
          applicationType: config.defaultTransport === 'body' ? 'native' : 'web',
          firstParty: true,
          scope: config.scopes.join(' '),
          configured: true,
        },
        update: { configured: true, firstParty: true },
      })
    }
  }

  /** The client named `id`, or null. */
  async find (id: string): Promise<Client | null> {
    const cached = this.cache.get(id)
    if (cached) return cached.client
    const row = await this.db.oauthClient.findUnique({ where: { id } })
    const client = row && this.toClient(row)
    this.cache.set(id, { client })
    return client
  }

  async get (id: string): Promise<Client> {
    const row = await this.db.oauthClient.findUnique({ where: { id } })
    if (!row) throw new DomainError('client_not_found', 'no client has this id')
    return this.toClient(row)
  }

  async list (): Promise<Client[]> {
    const rows = await this.db.oauthClient.findMany({ orderBy: { createdAt: 'asc' } })
    return rows.map((row) => this.toClient(row))
  }

  /** Registers a client; a confidential one's secret is in the answer, this once. */
  async create (metadata: ClientMetadata, actor: { id: string; ip?: string | undefined }): Promise<{ client: Client; secret?: string }> {
    const registration = this.checked(metadata)
    const id = `c_${randomBytes(12).toString('base64url')}`
    const secret = registration.tokenEndpointAuthMethod === 'none' ? undefined : newSecret()
    const row = await this.db.$transaction(async (tx) => {
      const created = await tx.oauthClient.create({ data: { id, ...registration, secretHash: secret ? this.hashSecret(secret) : null } })
      await recordAuditEvent(tx, { type: 'client_created', actorId: actor.id, ip: actor.ip, details: { clientId: id, name: created.name } })
      return created
    })
    return { client: this.toClient(row), ...(secret ? { secret } : {}) }
  }

  /**
   * Changes a client's metadata. A seeded client keeps its type and grants
   * (its transports and lifetimes are configuration's); turning a public
   * client confidential gives it a secret, shown in the answer.
   */
  async update (id: string, patch: Partial<ClientMetadata>, actor: { id: string; ip?: string | undefined }): Promise<{ client: Client; secret?: string }> {
    const current = await this.get(id)
    const merged: ClientMetadata = { ...clientMetadata(current), ...definedOnly(patch) }
    if (current.configured && (merged.token_endpoint_auth_method !== current.authMethod || !merged.first_party)) {
      throw new DomainError('client_configured', `${id} is a configured first-party public client: its type and first_party are configuration's`)
    }
    const registration = this.checked(merged, current.configured ? current.grantTypes : undefined)
    const becomesConfidential = current.authMethod === 'none' && registration.tokenEndpointAuthMethod !== 'none'
    const secret = becomesConfidential ? newSecret() : undefined
    const row = await this.db.$transaction(async (tx) => {
      const updated = await tx.oauthClient.update({
        where: { id },
        data: {
          ...registration,
          ...(secret ? { secretHash: this.hashSecret(secret) } : {}),
          ...(registration.tokenEndpointAuthMethod === 'none' ? { secretHash: null } : {}),
        },
      })
      await recordAuditEvent(tx, { type: 'client_updated', actorId: actor.id, ip: actor.ip, details: { clientId: id, fields: Object.keys(definedOnly(patch)) } })
      return updated
    })
    this.cache.delete(id)
    return { client: this.toClient(row), ...(secret ? { secret } : {}) }
  }

  /** Issues a new secret for a confidential client; the old one stops working at once. */
  async rotateSecret (id: string, actor: { id: string; ip?: string | undefined }): Promise<{ client: Client; secret: string }> {
    const current = await this.get(id)
    if (!current.confidential) throw new DomainError('invalid_client_metadata', 'a public client has no secret')
    const secret = newSecret()
    const row = await this.db.$transaction(async (tx) => {
      const updated = await tx.oauthClient.update({ where: { id }, data: { secretHash: this.hashSecret(secret) } })
      await recordAuditEvent(tx, { type: 'client_secret_rotated', actorId: actor.id, ip: actor.ip, details: { clientId: id } })
      return updated
    })
    this.cache.delete(id)
    return { client: this.toClient(row), secret }
  }

  /**
   * Deletes a registered client: its users' consents go with it (foreign
   * key), and `revokeSessions` ends its sessions in the same transaction.
   */
  async delete (
    id: string,
    actor: { id: string; ip?: string | undefined },
    revokeSessions: (tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0], clientId: string) => Promise<string[]>
  ): Promise<string[]> {
    const current = await this.get(id)
    if (current.configured) throw new DomainError('client_configured', `${id} is a configured first-party client; it cannot be deleted`)
    const revoked = await this.db.$transaction(async (tx) => {
      const ended = await revokeSessions(tx, id)
      await tx.authorizationCode.deleteMany({ where: { clientId: id } })
      await tx.oauthClient.delete({ where: { id } })
      await recordAuditEvent(tx, { type: 'client_deleted', actorId: actor.id, ip: actor.ip, details: { clientId: id, revokedSessions: ended.length } })
      return ended
    })
    this.cache.delete(id)
    return revoked
  }

  /** Audits a token a client got for itself (client_credentials). */
  async recordTokenIssued (clientId: string, scope: string, ip: string | undefined): Promise<void> {
    await recordAuditEvent(this.db, { type: 'client_token_issued', ip, details: { clientId, scope } })
  }

  /** Whether `secret` is the confidential client's current secret (constant time). */
  verifySecret (client: Client, secret: string): boolean {
    const stored = client.secretHash
    if (!stored) return false
    const presented = this.hashSecret(secret)
    return presented.length === stored.length && timingSafeEqual(presented, stored)
  }

  /** Whether `uri` is one of the client's redirect URIs (exact, or a native client's loopback on any port). */
  allowsRedirectUri (client: Client, uri: string): boolean {
    return matchesRedirectUri(client.redirectUris, uri, client.applicationType)
  }

  private hashSecret (secret: string): Uint8Array<ArrayBuffer> {
    return new Uint8Array(hmacSha256(this.secretKey, `client_secret:${secret}`))
  }

  /** Validates RFC 7591 metadata (§3.2.2's errors) and gives the row's fields. */
  private checked (metadata: ClientMetadata, fixedGrantTypes?: string[]) {
    const applicationType = metadata.application_type ?? 'web'
    const authMethod = metadata.token_endpoint_auth_method ?? 'client_secret_basic'
    for (const uri of [...metadata.redirect_uris, ...(metadata.post_logout_redirect_uris ?? [])]) {
      const problem = redirectUriProblem(uri, applicationType)
      if (problem) throw new DomainError('invalid_redirect_uri', problem)
    }
    const grantTypes = fixedGrantTypes ?? [...new Set(metadata.grant_types ?? ['authorization_code', 'refresh_token'])]
    if (!fixedGrantTypes) {
      for (const type of grantTypes) {
        if (!(REGISTRABLE_GRANT_TYPES as readonly string[]).includes(type)) {
          throw new DomainError('invalid_client_metadata', `grant_types: ${type} is not one of ${REGISTRABLE_GRANT_TYPES.join(', ')}`)
        }
      }
    }
    if (grantTypes.includes('client_credentials') && authMethod === 'none') {
      throw new DomainError('invalid_client_metadata', 'client_credentials needs a confidential client (RFC 6749 section 4.4)')
    }
    if (grantTypes.includes('authorization_code') && metadata.redirect_uris.length === 0) {
      throw new DomainError('invalid_redirect_uri', 'authorization_code needs at least one redirect URI')
    }
    const scopes = [...new Set((metadata.scope ?? '').split(' ').filter(Boolean))]
    const unknown = scopes.filter((scope) => !this.options.apiScopes.includes(scope) && !(OPENID_SCOPES as readonly string[]).includes(scope) && !isServiceScope(scope))
    if (unknown.length > 0) throw new DomainError('invalid_client_metadata', `scope: unknown ${unknown.join(' ')}`)
    const serviceScopes = scopes.filter(isServiceScope)
    if (serviceScopes.length > 0 && !grantTypes.includes('client_credentials')) {
      throw new DomainError('invalid_client_metadata', `scope: ${serviceScopes.join(' ')} is for a client registered for client_credentials`)
    }
    for (const [field, uri] of [['logo_uri', metadata.logo_uri], ['client_uri', metadata.client_uri]] as const) {
      if (uri !== undefined && !/^https:\/\/[^\s]+$/.test(uri) && !/^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?\//.test(uri)) {
        throw new DomainError('invalid_client_metadata', `${field} must be an https URL`)
      }
    }
    return {
      name: metadata.client_name,
      tokenEndpointAuthMethod: authMethod,
      applicationType,
      firstParty: metadata.first_party ?? false,
      redirectUris: [...new Set(metadata.redirect_uris)],
      postLogoutRedirectUris: [...new Set(metadata.post_logout_redirect_uris ?? [])],
      grantTypes,
      scope: scopes.filter((scope) => this.options.apiScopes.includes(scope) || isServiceScope(scope)).join(' '),
      logoUri: metadata.logo_uri ?? null,
      clientUri: metadata.client_uri ?? null,
    }
  }

  private toClient (row: OauthClient): Client {
    const configured = row.configured ? this.options.configured[row.id] : undefined
    const scopes = row.scope.split(' ').filter(Boolean)
    const transportAndLifetimes: Omit<ClientConfig, 'id' | 'scopes'> = configured ?? {
      defaultTransport: 'body',
      transports: ['body'],
      ...this.options.lifetimes,
    }
    return {
      id: row.id,
      ...transportAndLifetimes,
      scopes: configured ? configured.scopes : scopes,
      name: row.name,
      authMethod: row.tokenEndpointAuthMethod as TokenEndpointAuthMethod,
      confidential: row.tokenEndpointAuthMethod !== 'none',
      firstParty: row.firstParty,
      applicationType: row.applicationType as ApplicationType,
      redirectUris: row.redirectUris,
      postLogoutRedirectUris: row.postLogoutRedirectUris,
      // A configured client may use every grant but client_credentials, as the registry grows.
      grantTypes: configured ? this.options.grantTypes.filter((type) => type !== 'client_credentials') : row.grantTypes,
      logoUri: row.logoUri,
      clientUri: row.clientUri,
      configured: row.configured,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      secretHash: row.secretHash ? Buffer.from(row.secretHash) : null,
    }
  }
}

/** A registration as it stands: every field but the optional URIs is known. */
export type RegisteredMetadata = Required<Omit<ClientMetadata, 'logo_uri' | 'client_uri'>> & Pick<ClientMetadata, 'logo_uri' | 'client_uri'>

/** A client's registration in RFC 7591's names (what the admin API shows and a change starts from). */
export function clientMetadata (client: Client): RegisteredMetadata {
  return {
    client_name: client.name,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    scope: client.scopes.join(' '),
    token_endpoint_auth_method: client.authMethod,
    application_type: client.applicationType,
    first_party: client.firstParty,
    ...(client.logoUri ? { logo_uri: client.logoUri } : {}),
    ...(client.clientUri ? { client_uri: client.clientUri } : {}),
  }
}

function isServiceScope (scope: string): boolean {
  return (SERVICE_SCOPES as readonly string[]).includes(scope)
}

function newSecret (): string {
  return CLIENT_SECRET_PREFIX + randomBytes(32).toString('base64url')
}

function definedOnly<T extends object> (patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as Partial<T>
}
