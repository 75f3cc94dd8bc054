import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { chooseTransport, type Transport } from './clients.js'
import type { Client } from '../clients/clients.js'
import type { GrantContext, IssuedTokens } from './grants/index.js'
import { ApiError } from '../../errors.js'
import type { TokenResponse } from './schemas.js'

/** Only the auth paths ever see the refresh cookie (DESIGN §3.6). */
export const REFRESH_COOKIE_PATH = '/auth'
/** The header a cookie-using request must carry: a custom header forces a CORS preflight cross-origin. */
export const CSRF_HEADER = 'x-requested-with'

export function refreshCookieName (secure: boolean): string {
  // The __Secure- prefix makes browsers refuse the cookie unless it is Secure.
  return secure ? '__Secure-refresh_token' : 'refresh_token'
}

export interface ClientChoice {
  client: Client
  transport: Transport
}

const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="token"' }

/**
 * The client of a request to the token or revocation endpoint, authenticated
 * (RFC 6749 §2.3.1): a confidential client by its registered method,
 * client_secret_basic (the Authorization header) or client_secret_post
 * (client_secret in the body); a public client by its client_id alone, and
 * never with a secret, so no public client can pass for a confidential one.
 * A request naming no client gets the configured default. 401
 * invalid_client otherwise.
 */
export async function authenticateClient (
  fastify: FastifyInstance,
  request: FastifyRequest,
  params: { client_id?: string | undefined; client_secret?: string | undefined }
): Promise<Client> {
  const basic = basicCredentials(request.headers.authorization)
  if (basic && params.client_id !== undefined && params.client_id !== basic.id) {
    throw new ApiError('invalid_request', 'client_id in the body differs from the one in the Authorization header')
  }
  if (basic && params.client_secret !== undefined) throw new ApiError('invalid_request', 'use one client authentication method, not two (RFC 6749 section 2.3)')
  const id = basic?.id ?? params.client_id ?? fastify.config.defaultClientId
  const client = await fastify.clients.find(id)
  if (!client) throw new ApiError('invalid_client', 'unknown client_id', BASIC_CHALLENGE)
  const method = basic ? 'client_secret_basic' : params.client_secret !== undefined ? 'client_secret_post' : 'none'
  if (!client.confidential) {
    if (method !== 'none') throw new ApiError('invalid_client', 'a public client has no secret: send client_id alone', BASIC_CHALLENGE)
    return client
  }
  if (method !== client.authMethod) {
    throw new ApiError('invalid_client', `client ${client.id} authenticates with ${client.authMethod}`, BASIC_CHALLENGE)
  }
  const secret = basic?.secret ?? params.client_secret ?? ''
  if (!fastify.clients.verifySecret(client, secret)) throw new ApiError('invalid_client', 'client authentication failed', BASIC_CHALLENGE)
  return client
}

/** RFC 6749 §2.3.1: `Basic base64(urlencoded id ":" urlencoded secret)`, or null when the header is no Basic credential. */
function basicCredentials (header: string | undefined): { id: string; secret: string } | null {
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header ?? '')
  if (!match) return null
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 1) throw new ApiError('invalid_client', 'malformed Basic credentials', BASIC_CHALLENGE)
  try {
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '))
    const secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '))
    return { id, secret }
  } catch {
    throw new ApiError('invalid_client', 'malformed Basic credentials', BASIC_CHALLENGE)
  }
}

/** The authenticated client and the transport of a token-issuing request, or an RFC 6749 error. */
export async function resolveClient (
  fastify: FastifyInstance,
  request: FastifyRequest,
  params: { client_id?: string | undefined; client_secret?: string | undefined }
): Promise<ClientChoice> {
  const client = await authenticateClient(fastify, request, params)
  const requested = request.headers['token-transport']
  const transport = chooseTransport(client, typeof requested === 'string' ? requested.toLowerCase() : undefined)
  if (!transport) {
    throw new ApiError('invalid_request', `client ${client.id} does not allow the ${String(requested)} transport`)
  }
  return { client, transport }
}

/**
 * The CSRF defence of every request that authenticates with the refresh
 * cookie: its Origin must be allow-listed (or this service's own) and it must
 * carry X-Requested-With, which no cross-site form or simple request can set.
 * Returns why the request is refused, or null.
 */
export function cookieRequestProblem (fastify: FastifyInstance, request: FastifyRequest): string | null {
  const origin = request.headers.origin
  if (typeof origin !== 'string') return 'a request using the refresh cookie must send Origin'
  if (origin !== new URL(fastify.config.issuer).origin && !fastify.config.corsOrigins.includes(origin)) {
    return `origin ${origin} is not allowed`
  }
  if (!request.headers[CSRF_HEADER]) return `a request using the refresh cookie must send ${CSRF_HEADER}`
  return null
}

export function readRefreshCookie (fastify: FastifyInstance, request: FastifyRequest): string | undefined {
  // Parsed here, not by a hook on every request (http/external/cookie.ts).
  const header = request.headers.cookie
  return header === undefined ? undefined : fastify.parseCookie(header)[refreshCookieName(fastify.config.cookieSecure)]
}

export function clearRefreshCookie (fastify: FastifyInstance, reply: FastifyReply): void {
  const secure = fastify.config.cookieSecure
  reply.clearCookie(refreshCookieName(secure), { path: REFRESH_COOKIE_PATH, httpOnly: true, secure, sameSite: 'strict' })
}

/** What the grants get from a token request: the client, the domain services, the origin, the password budget. */
export function grantContext (fastify: FastifyInstance, request: FastifyRequest, client: Client, transport: Transport): GrantContext {
  return {
    config: fastify.config,
    client,
    accounts: fastify.accounts,
    sessions: fastify.sessions,
    keys: fastify.keys,
    now: fastify.now(),
    origin: { ip: request.ip, userAgent: request.headers['user-agent'] },
    spendPasswordAttempt: (accountEmail) => fastify.attemptLimits.passwordCheck(request, accountEmail),
    transport,
    secondFactors: fastify.secondFactors,
    spendOneTimeCodeAttempt: (userId) => fastify.attemptLimits.oneTimeCode(request, userId),
    passkeys: fastify.passkeys,
    spendPasskeyAttempt: () => fastify.attemptLimits.passkey(request, 'grant'),
    authorizationCodes: fastify.authorizationCodes,
    clients: fastify.clients,
  }
}

/**
 * Answers issued tokens in the chosen transport: the refresh token in the
 * body, or in the cookie and not the body (DESIGN §3.6).
 */
export function tokenResponse (fastify: FastifyInstance, reply: FastifyReply, issued: IssuedTokens, transport: Transport): TokenResponse {
  const { config } = fastify
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  const body: TokenResponse = {
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    scope: issued.scope,
    ...(issued.idToken ? { id_token: issued.idToken } : {}),
  }
  if (issued.refreshToken === null || issued.refreshExpiresAt === null) return body
  if (transport === 'body') return { ...body, refresh_token: issued.refreshToken }
  const maxAge = Math.max(0, Math.floor((issued.refreshExpiresAt.getTime() - fastify.now()) / 1000))
  reply.setCookie(refreshCookieName(config.cookieSecure), issued.refreshToken, {
    path: REFRESH_COOKIE_PATH,
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'strict',
    maxAge,
  })
  return body
}
