import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { chooseTransport, findClient, type ClientConfig, type Transport } from './clients.js'
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
  client: ClientConfig
  transport: Transport
}

/** The client and transport of a token-issuing request, or an RFC 6749 error. */
export function resolveClient (fastify: FastifyInstance, request: FastifyRequest, clientId: string | undefined): ClientChoice {
  const client = findClient(fastify.config, clientId)
  if (!client) throw new ApiError('invalid_client', 'unknown client_id', { 'www-authenticate': 'Basic realm="token"' })
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
export function grantContext (fastify: FastifyInstance, request: FastifyRequest, client: ClientConfig, transport: Transport): GrantContext {
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
  }
}

/**
 * Answers issued tokens in the chosen transport: the refresh token in the
 * body, or in the cookie and not the body (DESIGN §3.6).
 */
export function tokenResponse (fastify: FastifyInstance, reply: FastifyReply, issued: IssuedTokens, transport: Transport): TokenResponse {
  const { config } = fastify
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  const body: TokenResponse = { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope }
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
