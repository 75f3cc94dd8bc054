import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { Client } from '../clients/clients.js'
import { MFA_OTP_GRANT_TYPE } from '../second-factors/mfa-otp-grant.js'
import { PASSKEY_GRANT_TYPE } from '../passkeys/passkey-grant.js'
import type { SessionGrant } from '../sessions/sessions.js'

/**
 * The browser session at the authorization server (DESIGN §3.15): a session
 * of §3.5 like any other (listed, revocable, ended by a password change or a
 * disabling), opened by the hosted sign-in for this pseudo-client, whose
 * first refresh token is the HttpOnly cookie. It is never rotated and never
 * refreshes anything: no client has this id, so the token endpoint refuses
 * it. It gives single sign-on across clients and prompt=none.
 */
export const BROWSER_CLIENT_ID = 'authorization-server'

export function browserClient (fastify: FastifyInstance): Client {
  const { config } = fastify
  const lifetimes = config.clients[config.defaultClientId] ?? Object.values(config.clients)[0]!
  const epoch = new Date(0)
  return {
    id: BROWSER_CLIENT_ID,
    defaultTransport: 'cookie',
    transports: ['cookie'],
    scopes: [],
    accessTokenTtlSeconds: lifetimes.accessTokenTtlSeconds,
    refreshIdleTtlSeconds: lifetimes.refreshIdleTtlSeconds,
    refreshAbsoluteTtlSeconds: lifetimes.refreshAbsoluteTtlSeconds,
    name: 'Sign-in at this service',
    authMethod: 'none',
    confidential: false,
    firstParty: true,
    applicationType: 'web',
    redirectUris: [],
    postLogoutRedirectUris: [],
    grantTypes: ['password', MFA_OTP_GRANT_TYPE, PASSKEY_GRANT_TYPE],
    logoUri: null,
    clientUri: null,
    configured: true,
    secretHash: null,
    createdAt: epoch,
    updatedAt: epoch,
  }
}

/** `__Host-` when Secure: the browser then refuses it unless Secure, on Path=/, for this host only. */
export function sessionCookieName (secure: boolean): string {
  return secure ? '__Host-as_session' : 'as_session'
}
export function csrfCookieName (secure: boolean): string {
  return secure ? '__Host-as_csrf' : 'as_csrf'
}

function cookies (fastify: FastifyInstance, request: FastifyRequest): Record<string, string | undefined> {
  const header = request.headers.cookie
  return header === undefined ? {} : fastify.parseCookie(header)
}

/** The live browser session the request's cookie names, or null. */
export async function currentBrowserSession (fastify: FastifyInstance, request: FastifyRequest): Promise<SessionGrant | null> {
  const token = cookies(fastify, request)[sessionCookieName(fastify.config.cookieSecure)]
  if (!token || token.length > 256) return null
  const grant = await fastify.sessions.liveGrant({ refreshToken: token })
  return grant && grant.clientId === BROWSER_CLIENT_ID ? grant : null
}

/**
 * SameSite=Lax: the authorization request arrives as a top-level navigation
 * from the client's site, and single sign-on needs the cookie on it; every
 * state-changing request is a POST that also carries the CSRF token.
 */
export function setBrowserSessionCookie (fastify: FastifyInstance, reply: FastifyReply, token: string, expiresAt: Date): void {
  const secure = fastify.config.cookieSecure
  reply.setCookie(sessionCookieName(secure), token, {
    path: '/',
    httpOnly: true,
    secure,
    sameSite: 'lax',
    maxAge: Math.max(0, Math.floor((expiresAt.getTime() - fastify.now()) / 1000)),
  })
}

export function clearBrowserSessionCookie (fastify: FastifyInstance, reply: FastifyReply): void {
  const secure = fastify.config.cookieSecure
  reply.clearCookie(sessionCookieName(secure), { path: '/', httpOnly: true, secure, sameSite: 'lax' })
}

/** The CSRF value of the pages' forms (double submit): the browser's cookie, made on its first page. */
export function csrfToken (fastify: FastifyInstance, request: FastifyRequest, reply: FastifyReply): string {
  const secure = fastify.config.cookieSecure
  const existing = cookies(fastify, request)[csrfCookieName(secure)]
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing
  const value = randomBytes(32).toString('base64url')
  reply.setCookie(csrfCookieName(secure), value, { path: '/', httpOnly: true, secure, sameSite: 'lax' })
  return value
}

/**
 * Whether a page's POST passes the CSRF defence: its Origin is this
 * service's, and its `csrf` field is the browser's cookie.
 */
export function csrfProblem (fastify: FastifyInstance, request: FastifyRequest, presented: string | undefined): string | null {
  if (request.headers.origin !== new URL(fastify.config.issuer).origin) return 'the form was not sent from this service\'s pages'
  const cookie = cookies(fastify, request)[csrfCookieName(fastify.config.cookieSecure)]
  if (!cookie || !presented || cookie !== presented) return 'the form has expired; start again from the application'
  return null
}

export function readCsrfCookie (fastify: FastifyInstance, request: FastifyRequest): string | undefined {
  return cookies(fastify, request)[csrfCookieName(fastify.config.cookieSecure)]
}
