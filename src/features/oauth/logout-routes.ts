import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose'
import Type from 'typebox'
import { ApiError } from '../../errors.js'
import { recordAuditEvent } from '../../shared/audit.js'
import { SIGNING_ALG } from '../signing-keys/signing-keys.js'
import { clearBrowserSessionCookie, csrfProblem, csrfToken, currentBrowserSession, readCsrfCookie } from './browser-sessions.js'
import { errorPage, logoutPage, signedOutPage } from './pages.js'
import { sendPage } from './page-headers.js'

const LogoutQuery = Type.Object(
  {
    id_token_hint: Type.Optional(Type.String({ maxLength: 8192 })),
    post_logout_redirect_uri: Type.Optional(Type.String({ maxLength: 2000 })),
    state: Type.Optional(Type.String({ maxLength: 2048 })),
    client_id: Type.Optional(Type.String({ maxLength: 64 })),
    ui_locales: Type.Optional(Type.String({ maxLength: 64 })),
    logout_hint: Type.Optional(Type.String({ maxLength: 320 })),
  },
  { additionalProperties: true }
)
const LogoutForm = Type.Object({ csrf: Type.String({ maxLength: 64 }), logout: Type.String({ maxLength: 8192 }) }, { additionalProperties: false })
const HTML = { 200: Type.String({ description: 'an HTML page' }) }

interface LogoutRequest {
  redirectUri?: string
  state?: string
  clientName?: string
}

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), the
 * end_session_endpoint. A post-logout redirect URI must be one the client
 * registered, exactly, and the client must be known from client_id or from
 * an ID token of ours (id_token_hint, expired ones accepted as §2 allows);
 * otherwise the page says so and redirects nowhere. The browser session ends
 * at once when the hint names it; otherwise after the user confirms with
 * "Sign out" (a logout triggered by a cross-site link must not end anyone's
 * session by itself).
 */
const logoutRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config, clients, keys } = fastify
  const sealKey = fastify.serverKeys.authorizationRequest

  fastify.get(
    '/logout',
    {
      schema: {
        tags: ['oauth'],
        summary: 'RP-initiated logout (end_session_endpoint)',
        description: 'id_token_hint, post_logout_redirect_uri (registered, exact), state, client_id. Asks for confirmation unless id_token_hint names the current browser session.',
        querystring: LogoutQuery,
        produces: ['text/html'],
        response: HTML,
      },
    },
    async (request, reply) => {
      const { query } = request
      let hinted: { aud: string; sid?: string } | null = null
      if (query.id_token_hint) {
        hinted = await readHint(query.id_token_hint)
        if (!hinted) return sendPage(reply, errorPage('The sign-out request carries an ID token this service did not issue.'), { status: 400 })
      }
      const clientId = query.client_id ?? hinted?.aud
      if (query.client_id && hinted && hinted.aud !== query.client_id) {
        return sendPage(reply, errorPage('client_id and id_token_hint name different applications.'), { status: 400 })
      }
      const client = clientId ? await clients.find(clientId) : null
      const logout: LogoutRequest = {}
      if (query.post_logout_redirect_uri !== undefined) {
        if (!client || !client.postLogoutRedirectUris.includes(query.post_logout_redirect_uri)) {
          return sendPage(reply, errorPage('The address to return to after signing out is not registered for this application.'), { status: 400 })
        }
        logout.redirectUri = query.post_logout_redirect_uri
        if (query.state !== undefined) logout.state = query.state
      }
      if (client) logout.clientName = client.name
      const session = await currentBrowserSession(fastify, request)
      if (!session) return finish(reply, logout, 302)
      if (hinted?.sid !== undefined && hinted.sid === session.sessionId) {
        await endBrowserSession(session.sessionId, session.userId, request.ip)
        clearBrowserSessionCookie(fastify, reply)
        return finish(reply, logout, 302)
      }
      const csrf = csrfToken(fastify, request, reply)
      const sealed = await new SignJWT({ logout, csrf })
        .setProtectedHeader({ alg: 'HS256', typ: 'logout-request+jwt' })
        .setIssuedAt(Math.floor(fastify.now() / 1000))
        .setExpirationTime(Math.floor(fastify.now() / 1000) + 15 * 60)
        .sign(sealKey)
      return sendPage(reply, logoutPage({ csrf, logout: sealed, clientName: logout.clientName }), { formTargets: logout.redirectUri ? [logout.redirectUri] : [] })
    }
  )

  fastify.post(
    '/logout',
    { schema: { tags: ['oauth'], summary: 'The sign-out confirmation', body: LogoutForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const problem = csrfProblem(fastify, request, request.body.csrf)
      if (problem) throw new ApiError('csrf_check_failed', problem)
      let logout: LogoutRequest
      try {
        const { payload } = await jwtVerify<{ logout: LogoutRequest; csrf: string }>(request.body.logout, sealKey, {
          algorithms: ['HS256'],
          typ: 'logout-request+jwt',
          currentDate: new Date(fastify.now()),
        })
        if (payload.csrf !== readCsrfCookie(fastify, request)) throw new Error('another browser')
        logout = payload.logout
      } catch {
        throw new ApiError('csrf_check_failed', 'this sign-out has expired; start again from the application')
      }
      const session = await currentBrowserSession(fastify, request)
      if (session) await endBrowserSession(session.sessionId, session.userId, request.ip)
      clearBrowserSessionCookie(fastify, reply)
      return finish(reply, logout, 303)
    }
  )

  /** The claims of an ID token this service signed for any client, expired or not. */
  async function readHint (token: string): Promise<{ aud: string; sid?: string } | null> {
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), {
        issuer: config.issuer,
        algorithms: [SIGNING_ALG],
        typ: 'JWT',
        // OIDC RP-Initiated Logout §2: an expired ID token is still a hint.
        currentDate: new Date(0),
        clockTolerance: Number.MAX_SAFE_INTEGER,
      })
      if (typeof payload.aud !== 'string') return null
      return { aud: payload.aud, ...(typeof payload.sid === 'string' ? { sid: payload.sid } : {}) }
    } catch {
      return null
    }
  }

  async function endBrowserSession (sessionId: string, userId: string, ip: string) {
    const ended = await fastify.sessions.revoke({ sessionId, userId }, 'signed_out')
    if (ended.length > 0) await recordAuditEvent(fastify.db, { type: 'browser_session_ended', userId, actorId: userId, ip, details: { sessionId } })
  }

  function finish (reply: FastifyReply, logout: LogoutRequest, status: 302 | 303) {
    if (!logout.redirectUri) return sendPage(reply, signedOutPage())
    const url = new URL(logout.redirectUri)
    if (logout.state !== undefined) url.searchParams.append('state', logout.state)
    return reply.redirect(url.toString(), status)
  }
}

export default logoutRoutes
