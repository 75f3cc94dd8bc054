import type { FastifyRequest } from 'fastify'
import { ResourceAuthError } from './errors.js'

export type Credential = { kind: 'jwt'; value: string } | { kind: 'api_key'; value: string }

/** RFC 6750 §2.1: `Bearer` (any case) then a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i
const SCHEME = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?: |$)/

/**
 * The one credential a request carries: a Bearer token in Authorization, or
 * an API key in X-API-Key. No credential: 401 with a bare challenge; two, or
 * a malformed Bearer header: 400 invalid_request (RFC 6750 §2, §3.1).
 */
export function readCredential (request: FastifyRequest, options: { apiKeyPrefix: string; realm: string | undefined }): Credential {
  const { realm } = options
  const authorization = request.headers.authorization
  const apiKeyHeader = request.headers['x-api-key']
  if (Array.isArray(apiKeyHeader)) throw new ResourceAuthError('invalid_request', 'send one X-API-Key header', { realm })
  const scheme = authorization === undefined ? undefined : SCHEME.exec(authorization)?.[1]?.toLowerCase()
  const bearer = scheme === 'bearer'
  if (bearer && apiKeyHeader !== undefined) {
    throw new ResourceAuthError('invalid_request', 'send one credential: Authorization or X-API-Key, not both', { realm })
  }
  if (apiKeyHeader !== undefined) {
    if (apiKeyHeader === '') throw new ResourceAuthError('invalid_request', 'the X-API-Key header is empty', { realm })
    return { kind: 'api_key', value: apiKeyHeader }
  }
  if (!bearer) {
    // No credential of a scheme this server knows (none, or Basic, …): the bare challenge.
    throw new ResourceAuthError('unauthorized', 'authentication required', { realm })
  }
  const token = BEARER.exec(authorization!)?.[1]
  if (!token) throw new ResourceAuthError('invalid_request', 'the Authorization header is not a well-formed Bearer credential', { realm })
  return token.startsWith(options.apiKeyPrefix) ? { kind: 'api_key', value: token } : { kind: 'jwt', value: token }
}
