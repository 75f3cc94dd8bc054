import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import { ApiError, DomainError } from '../../errors.js'
import { isDatabaseUnavailable } from '../../http/error-handler.js'
import { acrOf } from '../../shared/authentication-methods.js'
import type { Client } from '../clients/clients.js'
import { mfaOtpGrant } from '../second-factors/mfa-otp-grant.js'
import { passkeyGrant } from '../passkeys/passkey-grant.js'
import type { SessionGrant } from '../sessions/sessions.js'
import { passwordGrant } from '../tokens/grants/password.js'
import type { GrantContext, GrantOutcome, SessionOutcome } from '../tokens/grants/grant.js'
import { grantContext } from '../tokens/transport.js'
import { sessionRequest } from '../tokens/grants/grant.js'
import { openInteraction, readAuthorizationRequest, redirectTo, sealInteraction, type AuthorizationRequest } from './authorization-request.js'
import { browserClient, clearBrowserSessionCookie, csrfProblem, csrfToken, currentBrowserSession, readCsrfCookie, setBrowserSessionCookie } from './browser-sessions.js'
import { consentPage, errorPage, secondFactorPage, signInPage, signUpPage } from './pages.js'
import { PAGES_CSS, PAGES_JS } from './pages-assets.js'
import { sendPage } from './page-headers.js'
import { describeScope } from './scopes.js'
import logoutRoutes from './logout-routes.js'

/** A parameter of the authorization request: a string, or several when repeated (refused as OAuth 2.1 §3.1 says, by readAuthorizationRequest). */
const Param = (description: string) => Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 10 })], { description }))
const AuthorizeParams = Type.Object(
  {
    response_type: Param('code (the only response type)'),
    client_id: Param('the client'),
    redirect_uri: Param('one of the client\'s registered redirect URIs, exactly (a native client\'s loopback URI on any port)'),
    scope: Param('openid profile email offline_access, and the client\'s API scopes'),
    state: Param('returned as it is'),
    nonce: Param('returned in the ID token'),
    code_challenge: Param('PKCE: BASE64URL(SHA-256(code_verifier)), required'),
    code_challenge_method: Param('S256 (plain is refused)'),
    prompt: Param('none, login, consent or select_account'),
    max_age: Param('seconds: an older sign-in signs in again'),
    login_hint: Param('the address to fill in'),
    acr_values: Param('urn:token-auth:acr:mfa asks for two factors'),
  },
  { additionalProperties: Type.Union([Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 10 })]), maxProperties: 40 }
)
const Interaction = Type.String({ maxLength: 8192 })
const Csrf = Type.String({ maxLength: 64 })
const SignInForm = Type.Object({ interaction: Interaction, csrf: Csrf, email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false })
const PageForm = Type.Object({ interaction: Interaction, csrf: Csrf }, { additionalProperties: false })
const SignUpForm = Type.Object({ interaction: Interaction, csrf: Csrf, email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false })
const PasskeyForm = Type.Object({ interaction: Interaction, csrf: Csrf, credential: Type.String({ maxLength: 16384 }) }, { additionalProperties: false })
const SecondFactorForm = Type.Object(
  {
    interaction: Interaction,
    csrf: Csrf,
    mfa_token: Type.String({ maxLength: 128 }),
    code: Type.Optional(Type.String({ maxLength: 32 })),
    credential: Type.Optional(Type.String({ maxLength: 16384 })),
  },
  { additionalProperties: false }
)
const ConsentForm = Type.Object({ interaction: Interaction, csrf: Csrf, decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]) }, { additionalProperties: false })
const HTML = { 200: Type.String({ description: 'an HTML page' }) }

/**
 * The authorization endpoint (OAuth 2.1 §4.1, OIDC Core §3.1.2) and the
 * hosted sign-in pages behind it (DESIGN §3.15). Every login path of the
 * token endpoint is reused as it is, by running its grant for the browser
 * session's pseudo-client: the password grant (budgets, equal time for an
 * unknown address, bcrypt shedding, verification and disabled checks, races
 * with a password change), the mfa-otp grant's second step, and the passkey
 * grant. What carries one step to the next is the request sealed in the
 * pages' `interaction` field, bound to the browser's CSRF cookie.
 */
const authorizeRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Form bodies in this scope only (the pages' forms, POST /oauth/authorize, the logout confirmation).
  await fastify.register(formbody, { bodyLimit: 32 * 1024 })
  const { config, clients, consents, authorizationCodes } = fastify
  const interactionKey = fastify.serverKeys.authorizationRequest
  const browser = browserClient(fastify)

  fastify.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
    const api = error instanceof ApiError ? error : error instanceof DomainError ? ApiError.from(error) : null
    const status = api?.statusCode ?? (isDatabaseUnavailable(error) ? 503 : error.validation ? 400 : error.statusCode && error.statusCode < 500 ? error.statusCode : 500)
    if (status >= 500) request.log.error({ err: error }, 'sign-in page failed')
    if (api) reply.headers(api.headers)
    const message = status >= 500 ? 'Something went wrong on our side; try again in a moment.' : api?.message ?? 'The request is malformed.'
    return sendPage(reply, errorPage(message), { status })
  })

  fastify.get('/assets/pages.css', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').type('text/css; charset=utf-8')
    return PAGES_CSS
  })
  fastify.get('/assets/pages.js', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=3600').type('text/javascript; charset=utf-8')
    return PAGES_JS
  })

  const authorizeSchema = {
    tags: ['oauth'],
    summary: 'Authorization endpoint (OAuth 2.1 §4.1, OpenID Connect Core §3.1.2)',
    description:
      'Code flow only, PKCE S256 required. An unknown client or redirect URI gets an error page; other errors go to the redirect URI with error, state and iss (RFC 9207). ' +
      'Signs the user in on this service\'s pages (or through the browser session: single sign-on, prompt=none), asks third-party clients for consent, and redirects with code, state and iss. ' +
      'GET with the parameters in the query, or POST with them in a form body (OIDC Core §3.1.2.1).',
    produces: ['text/html'],
    response: HTML,
  }
  fastify.get('/authorize', { schema: { ...authorizeSchema, querystring: AuthorizeParams } }, async (request, reply) =>
    authorize(request, reply, request.query as Record<string, string | string[]>))
  fastify.post('/authorize', { schema: { ...authorizeSchema, body: AuthorizeParams } }, async (request, reply) =>
    authorize(request, reply, request.body as Record<string, string | string[]>))

  async function authorize (request: FastifyRequest, reply: FastifyReply, params: Record<string, string | string[]>): Promise<FastifyReply> {
    const clientId = typeof params.client_id === 'string' ? params.client_id : undefined
    const client = clientId && /^[A-Za-z0-9_.-]{1,64}$/.test(clientId) ? await clients.find(clientId) : null
    const read = readAuthorizationRequest(params, client, (c, uri) => clients.allowsRedirectUri(c, uri))
    if ('kind' in read) {
      if (read.kind === 'page') return sendPage(reply, errorPage(read.message), { status: 400 })
      return reply.redirect(redirectTo(read.redirectUri, { error: read.error, error_description: read.description, state: read.state }, config.issuer), 303)
    }
    const csrf = csrfToken(fastify, request, reply)
    const session = await currentBrowserSession(fastify, request)
    if (!session || mustAuthenticate(read, session)) {
      if (read.prompt.includes('none')) return redirectError(reply, read, 'login_required', 'the user must sign in', 303)
      return signIn(reply, read, client!, csrf)
    }
    return continueAuthorization(request, reply, read, client!, session, csrf, 303)
  }

  /** prompt=login or select_account, an authentication older than max_age, or an acr the session does not meet: the user signs in again. */
  function mustAuthenticate (request: AuthorizationRequest, session: SessionGrant): boolean {
    if (request.prompt.includes('login') || request.prompt.includes('select_account')) return true
    if (request.maxAge !== undefined && fastify.now() - session.authTime.getTime() > request.maxAge * 1000) return true
    const asserted = acrOf(session.amr)
    const known = request.acrValues.filter((value) => value === acrOf(['mfa']))
    return known.length > 0 && !known.includes(asserted ?? '')
  }

  async function signIn (reply: FastifyReply, request: AuthorizationRequest, client: Client, csrf: string, error?: string, status = 200, email?: string, notice?: string): Promise<FastifyReply> {
    const interaction = await sealInteraction(interactionKey, request, csrf, fastify.now())
    return sendPage(reply, signInPage({
      csrf,
      interaction,
      clientName: client.name,
      email: email ?? request.loginHint,
      error,
      notice,
      signUpUrl: config.oauth.signUpUrl,
      forgotPasswordUrl: config.oauth.forgotPasswordUrl,
      passkeys: true,
    }), { status, formTargets: [request.redirectUri] })
  }

  function redirectError (reply: FastifyReply, request: AuthorizationRequest, error: string, description: string, status: 303): FastifyReply {
    return reply.redirect(redirectTo(request.redirectUri, { error, error_description: description, state: request.state }, config.issuer), status)
  }

  /** With a signed-in browser: consent where a third-party client needs it, then the code. */
  async function continueAuthorization (
    request: FastifyRequest,
    reply: FastifyReply,
    authorization: AuthorizationRequest,
    client: Client,
    session: SessionGrant,
    csrf: string,
    status: 303,
    consented = false
  ): Promise<FastifyReply> {
    if (!client.firstParty && !consented) {
      const granted = await consents.granted(session.userId, client.id)
      const missing = authorization.scopes.filter((scope) => !granted.includes(scope))
      const noGrantYet = granted.length === 0 && !(await consents.exists(session.userId, client.id))
      if (authorization.prompt.includes('consent') || missing.length > 0 || noGrantYet) {
        if (authorization.prompt.includes('none')) return redirectError(reply, authorization, 'consent_required', 'the user must allow this application', status)
        const user = await fastify.accounts.findPublic(session.userId)
        const interaction = await sealInteraction(interactionKey, authorization, csrf, fastify.now())
        return sendPage(reply, consentPage({
          csrf,
          interaction,
          clientName: client.name,
          clientUri: client.clientUri,
          logoUri: client.logoUri,
          email: user?.email ?? '',
          scopes: (authorization.scopes.length > 0 ? authorization.scopes : ['openid']).map((scope) => ({ scope, description: describeScope(scope) })),
        }), { formTargets: [authorization.redirectUri] })
      }
    }
    const code = await authorizationCodes.issue({
      clientId: client.id,
      userId: session.userId,
      redirectUri: authorization.redirectUri,
      codeChallenge: authorization.codeChallenge,
      scope: authorization.scopes.join(' '),
      nonce: authorization.nonce ?? null,
      browserSessionId: session.sessionId,
      amr: session.amr,
      authTime: session.authTime,
    })
    request.log.info({ clientId: client.id }, 'authorization code issued')
    return reply.redirect(redirectTo(authorization.redirectUri, { code, state: authorization.state }, config.issuer), status)
  }

  /** A page's POST: the CSRF defence, then the request its interaction carries and that request's client. */
  async function openForm (request: FastifyRequest, body: { interaction: string; csrf: string }) {
    const problem = csrfProblem(fastify, request, body.csrf)
    if (problem) throw new ApiError('csrf_check_failed', problem)
    const authorization = await openInteraction(interactionKey, body.interaction, readCsrfCookie(fastify, request) ?? '', fastify.now())
    if (!authorization) throw new ApiError('csrf_check_failed', 'this sign-in has expired; start again from the application')
    const client = await clients.find(authorization.clientId)
    if (!client || !clients.allowsRedirectUri(client, authorization.redirectUri)) throw new ApiError('invalid_request', 'this application is no longer registered')
    return { authorization, client, csrf: body.csrf }
  }

  /** After a login step: the browser session replaces any earlier one, and the authorization goes on. */
  async function signedIn (request: FastifyRequest, reply: FastifyReply, outcome: SessionOutcome, form: Awaited<ReturnType<typeof openForm>>) {
    const earlier = await currentBrowserSession(fastify, request)
    if (earlier && earlier.sessionId !== outcome.grant.sessionId) await fastify.sessions.revoke({ sessionId: earlier.sessionId }, 'signed_in_again')
    setBrowserSessionCookie(fastify, reply, outcome.refreshToken, outcome.grant.idleExpiresAt)
    return continueAuthorization(request, reply, form.authorization, form.client, outcome.grant, form.csrf, 303)
  }

  /** The outcome of a login step that did not sign in: the second step, or the page again with what went wrong. */
  async function loginRefused (reply: FastifyReply, form: Awaited<ReturnType<typeof openForm>>, error: unknown, retry: (message: string, status: number) => Promise<FastifyReply>): Promise<FastifyReply> {
    if (error instanceof DomainError && error.code === 'mfa_required') {
      const interaction = await sealInteraction(interactionKey, form.authorization, form.csrf, fastify.now())
      return sendPage(reply, secondFactorPage({
        csrf: form.csrf,
        interaction,
        mfaToken: String(error.fields?.mfa_token ?? ''),
        factors: (error.fields?.factors as readonly string[] | undefined) ?? [],
      }), { formTargets: [form.authorization.redirectUri] })
    }
    if (error instanceof DomainError || error instanceof ApiError) {
      const api = error instanceof ApiError ? error : ApiError.from(error)
      if (api.statusCode >= 500 && api.code !== 'temporarily_unavailable' && api.code !== 'service_overloaded') throw error
      reply.headers(api.headers)
      const message = api.code === 'invalid_grant' ? 'The email or password is wrong, or the code did not match.' : api.message
      return retry(message, api.code === 'invalid_grant' ? 401 : api.statusCode)
    }
    throw error
  }

  /**
   * Runs one of the token endpoint's login grants for the browser session's
   * pseudo-client (cookie transport) and goes on: signed in, the second
   * step, or `retry`'s page saying what went wrong.
   */
  async function runLoginStep (
    request: FastifyRequest,
    reply: FastifyReply,
    form: Awaited<ReturnType<typeof openForm>>,
    grant: (context: GrantContext) => Promise<GrantOutcome>,
    retry: (message: string, status: number) => Promise<FastifyReply>
  ): Promise<FastifyReply> {
    try {
      const outcome = await grant(grantContext(fastify, request, browser, 'cookie'))
      return await signedIn(request, reply, outcome as SessionOutcome, form)
    } catch (error) {
      return loginRefused(reply, form, error, retry)
    }
  }

  /** The factors left to a pending login, or null when its mfa_token is spent or expired. */
  async function pendingFactors (mfaToken: string): Promise<string[] | null> {
    try {
      const { userId } = await fastify.secondFactors.pendingLoginUser(mfaToken)
      return await fastify.secondFactors.loginFactors(userId)
    } catch (error) {
      if (error instanceof DomainError) return null
      throw error
    }
  }

  fastify.post(
    '/sign-in',
    { schema: { tags: ['oauth'], summary: 'The hosted sign-in page\'s password form', body: SignInForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      return runLoginStep(request, reply, form,
        (context) => fastify.metrics.login('password', () => passwordGrant.handle({ grant_type: 'password', username: request.body.email, password: request.body.password }, context)),
        (message, status) => signIn(reply, form.authorization, form.client, form.csrf, message, status, request.body.email))
    }
  )

  fastify.post(
    '/sign-in/form',
    { schema: { tags: ['oauth'], summary: 'The hosted sign-in page, again (from the sign-up page)', body: PageForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      return signIn(reply, form.authorization, form.client, form.csrf)
    }
  )

  fastify.post(
    '/sign-up/form',
    { schema: { tags: ['oauth'], summary: 'The hosted sign-up page', body: PageForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      return signUp(reply, form)
    }
  )

  async function signUp (reply: FastifyReply, form: Awaited<ReturnType<typeof openForm>>, error?: string, status = 200, email?: string): Promise<FastifyReply> {
    const interaction = await sealInteraction(interactionKey, form.authorization, form.csrf, fastify.now())
    return sendPage(reply, signUpPage({ csrf: form.csrf, interaction, clientName: form.client.name, email, error }), { status, formTargets: [form.authorization.redirectUri] })
  }

  fastify.post(
    '/sign-up',
    {
      schema: {
        tags: ['oauth'],
        summary: 'The hosted sign-up form: creates the account as POST /auth/signup does, signs the browser in, and goes on with the authorization',
        body: SignUpForm,
        produces: ['text/html'],
        response: HTML,
      },
    },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      const { email, password } = request.body
      let login
      try {
        await fastify.attemptLimits.signup(request, email)
        login = await fastify.accounts.signUp(email, password, request.ip, fastify.recovery.queueVerification)
      } catch (error) {
        if (!(error instanceof DomainError || error instanceof ApiError)) throw error
        const api = error instanceof ApiError ? error : ApiError.from(error)
        if (api.statusCode >= 500) throw error
        reply.headers(api.headers)
        return signUp(reply, form, api.message, api.statusCode, email)
      }
      fastify.mailDelivery?.kick()
      // Where the platform requires a confirmed address to sign in, the new account waits for its link.
      if (config.email.requireVerification) {
        return signIn(reply, form.authorization, form.client, form.csrf, undefined, 200, login.user.email, `Account created. Open the link we sent to ${login.user.email} to confirm the address, then sign in.`)
      }
      const context = grantContext(fastify, request, browser, 'cookie')
      const started = await fastify.accounts.startSession(login, sessionRequest(context, ''), { recordLogin: true })
      if (!started) return signIn(reply, form.authorization, form.client, form.csrf, 'The account changed while it was being created; sign in.', 409, email)
      return signedIn(request, reply, { ...started, scope: '' }, form)
    }
  )

  fastify.post(
    '/sign-in/passkey',
    { schema: { tags: ['oauth'], summary: 'The hosted sign-in page\'s passkey form', body: PasskeyForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      return runLoginStep(request, reply, form,
        (context) => fastify.metrics.login('passkey', () => passkeyGrant.handle({ grant_type: passkeyGrant.type, credential: request.body.credential }, context)),
        (message, status) => signIn(reply, form.authorization, form.client, form.csrf, message, status))
    }
  )

  fastify.post(
    '/sign-in/second-factor',
    { schema: { tags: ['oauth'], summary: 'The hosted second step: a TOTP code, a recovery code or a passkey', body: SecondFactorForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      const { code, credential, mfa_token: mfaToken } = request.body
      const step = credential
        ? { credential }
        : code && /^\d{6}$/.test(code.trim()) ? { otp: code.trim() } : { recovery_code: (code ?? '').trim() }
      return runLoginStep(request, reply, form,
        (context) => fastify.metrics.login('second_factor', () => mfaOtpGrant.handle({ grant_type: mfaOtpGrant.type, mfa_token: mfaToken, ...step }, context)),
        async (message, status) => {
          const interaction = await sealInteraction(interactionKey, form.authorization, form.csrf, fastify.now())
          const factors = await pendingFactors(mfaToken)
          if (!factors) return signIn(reply, form.authorization, form.client, form.csrf, 'Sign in again: this sign-in expired.', status)
          return sendPage(reply, secondFactorPage({ csrf: form.csrf, interaction, mfaToken, factors, error: message }), { status, formTargets: [form.authorization.redirectUri] })
        })
    }
  )

  // The logout page's form is a page of this scope too: its errors are pages, its body a form.
  await fastify.register(logoutRoutes)

  fastify.post(
    '/consent',
    { schema: { tags: ['oauth'], summary: 'The consent page\'s decision', body: ConsentForm, produces: ['text/html'], response: HTML } },
    async (request, reply) => {
      const form = await openForm(request, request.body)
      const session = await currentBrowserSession(fastify, request)
      if (!session) {
        clearBrowserSessionCookie(fastify, reply)
        return signIn(reply, form.authorization, form.client, form.csrf, 'Your sign-in ended; sign in again.', 401)
      }
      if (request.body.decision === 'deny') return redirectError(reply, form.authorization, 'access_denied', 'the user denied access', 303)
      await consents.grant(session.userId, form.client.id, form.authorization.scopes, request.ip)
      return continueAuthorization(request, reply, form.authorization, form.client, session, form.csrf, 303, true)
    }
  )
}

export default authorizeRoutes
