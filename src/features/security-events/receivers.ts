import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ApiError, invalidToken } from '../../errors.js'
import { EVENTS_SCOPE, looksLikeApiKey } from '../api-keys/api-keys.js'
import { looksLikeJwt, verifyClientAccessToken } from '../tokens/access-tokens.js'
import type { Receiver } from './streams.js'

/** RFC 6750 §2.1: `Bearer` in any case, then a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/**
 * Who manages a stream and polls it (DESIGN §3.18, SSF 1.0 §7.1.1's
 * authorization schemes): a confidential client with its own
 * client_credentials access token (RFC 6749 §4.4) holding the `events`
 * scope, or an admin's API key holding it (`Authorization: Bearer tak_…` or
 * `X-API-Key`). A user's access token is refused (403), even an admin's:
 * streams belong to services, not to sign-ins. The client must still be
 * registered for client_credentials, the key's owner still an admin.
 */
export async function authenticateReceiver (fastify: FastifyInstance, request: FastifyRequest): Promise<Receiver> {
  const headerKey = request.headers['x-api-key']
  if (typeof headerKey === 'string') return apiKeyReceiver(fastify, headerKey)
  const header = request.headers.authorization
  if (header === undefined) throw invalidToken(null)
  const credential = BEARER.exec(header)?.[1]
  if (!credential) throw invalidToken('expected a Bearer credential: a client_credentials access token or an API key')
  if (looksLikeApiKey(credential)) return apiKeyReceiver(fastify, credential)
  if (!looksLikeJwt(credential)) throw invalidToken('the credential is invalid')
  const { config } = fastify
  const claims = await verifyClientAccessToken(fastify.keys, credential, { issuer: config.issuer, audience: config.audience, now: fastify.now() })
  if (claims === null) {
    // A user's access token, checked as the service checks one (a bad or revoked one is 401), then refused.
    await fastify.authenticate(request)
    throw new ApiError('forbidden', 'security-event streams are managed by services: a client_credentials token or an admin\'s API key with the events scope')
  }
  const client = await fastify.clients.find(claims.client_id)
  if (!client || !client.grantTypes.includes('client_credentials')) throw invalidToken('the client may no longer use client_credentials')
  requireEventsScope(claims.scope.split(' '))
  return { kind: 'client', clientId: client.id }
}

async function apiKeyReceiver (fastify: FastifyInstance, key: string): Promise<Receiver> {
  const principal = await fastify.apiKeys.verify(key)
  if (!principal) throw invalidToken('the API key is invalid, expired or revoked')
  requireEventsScope(principal.scopes)
  // Only an admin may grant the events scope, so a key holds it only while its owner is an admin.
  if (principal.role !== 'admin') throw new ApiError('forbidden', 'requires the admin role')
  return { kind: 'admin', userId: principal.userId }
}

function requireEventsScope (scopes: readonly string[]): void {
  if (scopes.includes(EVENTS_SCOPE)) return
  throw new ApiError('insufficient_scope', `requires scope ${EVENTS_SCOPE}`, {
    'www-authenticate': `Bearer error="insufficient_scope", scope="${EVENTS_SCOPE}"`,
  })
}
