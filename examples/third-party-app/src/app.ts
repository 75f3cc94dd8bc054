import { randomBytes } from 'node:crypto'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import * as client from 'openid-client'

/**
 * A third-party web app that signs its users in with the platform ("Sign in
 * with token-auth"), as any OpenID Connect relying party would: openid-client
 * (a certified relying party) for discovery, the authorization-code flow
 * with PKCE, state and nonce, the ID token's checks, userinfo and
 * RP-initiated logout. It knows the platform only by its issuer URL and the
 * client it was registered as.
 */

export interface ThirdPartyConfig {
  /** The platform's issuer URL. */
  issuer: string
  clientId: string
  /** The confidential client's secret (client_secret_basic); none for a public client. */
  clientSecret?: string | undefined
  /** This app's callback, registered exactly as the client's redirect URI. */
  redirectUri: string
  /** Where the platform sends the user after signing out: a registered post-logout redirect URI. */
  postLogoutRedirectUri: string
  /** Default `openid email`. */
  scope?: string
  logLevel?: string
}

/** A visitor's state, kept here and named by an HttpOnly cookie: the tokens never reach the browser. */
interface Visit {
  /** A sign-in on its way to the platform and back. */
  pending?: { state: string; nonce: string; codeVerifier: string; startedAt: number }
  signedIn?: { claims: client.IDToken; userinfo: client.UserInfoResponse; idToken: string }
}

const COOKIE = 'tp_visit'
/** A sign-in left at the platform's page longer than this starts again. */
const PENDING_MS = 10 * 60_000

/** Plain http only to a loopback issuer (development, tests): openid-client refuses it elsewhere, as it should. */
export function isLoopbackHttp (url: URL): boolean {
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
}

/** Discovers the issuer and builds the app; does not listen (server.ts does). */
export async function buildThirdPartyApp (config: ThirdPartyConfig): Promise<FastifyInstance> {
  const issuer = new URL(config.issuer)
  const oidc = await client.discovery(
    issuer,
    config.clientId,
    undefined,
    config.clientSecret ? client.ClientSecretBasic(config.clientSecret) : client.None(),
    isLoopbackHttp(issuer) ? { execute: [client.allowInsecureRequests] } : {}
  )
  const scope = config.scope ?? 'openid email'
  const secureCookie = new URL(config.redirectUri).protocol === 'https:'
  // Bounded: a flood of /login requests evicts the oldest visits rather than growing memory.
  const visits = new LRUCache<string, Visit>({ max: 10_000, ttl: 8 * 60 * 60_000 })

  const app = Fastify({
    logger: { level: config.logLevel ?? 'info', redact: { paths: ['req.headers.cookie'], censor: '[redacted]' } },
    forceCloseConnections: 'idle',
  })
  await app.register(cookie)
  // The sign-out button posts a form (an empty one).
  await app.register(formbody)
  // The pages cannot be framed and run no script.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' " + issuer.origin + "; frame-ancestors 'none'")
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
  })

  function visitOf (request: FastifyRequest): { id: string; visit: Visit } | null {
    const id = request.cookies[COOKIE]
    const visit = id ? visits.get(id) : undefined
    return id && visit ? { id, visit } : null
  }
  /** A new visit under a new id: a sign-in never continues under an id chosen before it (session fixation). */
  function startVisit (reply: FastifyReply, visit: Visit): void {
    const id = randomBytes(32).toString('base64url')
    visits.set(id, visit)
    // Lax: the cookie comes back on the platform's redirect to /callback (a top-level GET from another site).
    void reply.setCookie(COOKIE, id, { httpOnly: true, secure: secureCookie, sameSite: 'lax', path: '/' })
  }

  app.get('/', async (request, reply) => {
    const signedIn = visitOf(request)?.visit.signedIn
    void reply.type('text/html; charset=utf-8')
    if (!signedIn) {
      return page('Example app', '<p>You are not signed in.</p><p><a href="/login">Sign in with the platform</a></p>')
    }
    const email = typeof signedIn.claims.email === 'string' ? signedIn.claims.email : signedIn.claims.sub
    return page(
      'Example app',
      `<p>Signed in as <strong data-testid="email">${escapeHtml(email)}</strong>.</p>` +
        `<h2>ID token claims</h2><pre data-testid="claims">${escapeHtml(JSON.stringify(signedIn.claims, null, 2))}</pre>` +
        `<h2>Userinfo</h2><pre data-testid="userinfo">${escapeHtml(JSON.stringify(signedIn.userinfo, null, 2))}</pre>` +
        '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
    )
  })

  app.get('/login', async (_request, reply) => {
    const pending = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier(), startedAt: Date.now() }
    startVisit(reply, { pending })
    const url = client.buildAuthorizationUrl(oidc, {
      redirect_uri: config.redirectUri,
      scope,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    })
    return reply.redirect(url.href)
  })

  app.get('/callback', async (request, reply) => {
    const current = visitOf(request)
    const pending = current?.visit.pending
    if (!current || !pending || Date.now() - pending.startedAt > PENDING_MS) {
      return reply.code(400).type('text/html; charset=utf-8').send(page('Sign-in failed', '<p>No sign-in is in progress here.</p><p><a href="/login">Sign in</a></p>'))
    }
    // Spent whatever happens: a callback URL works once.
    visits.delete(current.id)
    // The callback as the platform addressed it (behind a proxy request.url's host may differ): the redirect URI and this query.
    const callbackUrl = new URL(config.redirectUri)
    callbackUrl.search = new URL(request.url, 'http://callback.invalid').search
    try {
      const tokens = await client.authorizationCodeGrant(oidc, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      })
      const claims = tokens.claims()!
      const userinfo = await client.fetchUserInfo(oidc, tokens.access_token, claims.sub)
      startVisit(reply, { signedIn: { claims, userinfo, idToken: tokens.id_token! } })
      return reply.redirect('/')
    } catch (error) {
      request.log.warn({ err: error }, 'sign-in failed')
      const reason = error instanceof client.AuthorizationResponseError
        ? `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`
        : (error as Error).message
      reply.clearCookie(COOKIE, { path: '/' })
      return reply.code(400).type('text/html; charset=utf-8').send(page('Sign-in failed', `<p>${escapeHtml(reason)}</p><p><a href="/login">Try again</a></p>`))
    }
  })

  // POST, and the cookie is SameSite=Lax: another site cannot sign the visitor out.
  app.post('/logout', async (request, reply) => {
    const current = visitOf(request)
    if (current) visits.delete(current.id)
    reply.clearCookie(COOKIE, { path: '/' })
    const idToken = current?.visit.signedIn?.idToken
    if (!idToken) return reply.redirect('/', 303)
    // RP-initiated logout: the platform ends its own session too, then sends the visitor back here.
    const url = client.buildEndSessionUrl(oidc, { id_token_hint: idToken, post_logout_redirect_uri: config.postLogoutRedirectUri })
    return reply.redirect(url.href, 303)
  })

  return app
}

function page (title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>` +
    '<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f6f8;padding:.5rem}</style>' +
    `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}
