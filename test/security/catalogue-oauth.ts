import { randomBytes } from 'node:crypto'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import type { Test } from 'tap'
import { json } from '../helpers/app.js'
import { authorizeUrl, followAuthorization, formFields, pkcePair } from '../helpers/oauth.js'
import { InjectedPageBrowser } from '../helpers/oauth-inject.js'
import { centreStep, enrolTotp } from '../helpers/totp.js'
import { assertInvalidGrant, assertInvalidToken } from './attack-helpers.js'
import type { AttackCase } from './catalogue.js'
import { decodePart, EVIL_ORIGIN, PASSWORD, type AttackContext, type Response } from './context.js'

/**
 * The authorization server and OpenID provider (issue 26, DESIGN §3.14,
 * §3.15) under RFC 9700 §4's attacks: redirect URIs bent to another
 * target, codes injected, replayed or exchanged without their PKCE
 * verifier, mix-up, CSRF and clickjacking of the hosted pages, open
 * redirects through errors and logout, prompt=none used as an oracle,
 * ID tokens replayed at another client or as access tokens, and clients
 * passing for what they are not. Each case drives the hosted pages as a
 * browser would (InjectedPageBrowser: cookies, forms, Origin) and the
 * token endpoint as a client would.
 */

const RP = 'https://rp.example/cb'
const RP_SIGNED_OUT = 'https://rp.example/signed-out'
const OTHER = 'https://other-rp.example/cb'
const OTHER_SIGNED_OUT = 'https://other-rp.example/signed-out'
const SPA = 'https://spa-rp.example/cb'
const LOOPBACK = 'http://127.0.0.1/cb'

interface Client {
  client_id: string
  client_secret?: string
  redirect_uris: string[]
}

/** The clients every case uses, registered once per context through the admin API. */
interface OAuthWorld {
  adminEmail: string
  /** A confidential third-party web client (client_secret_basic). */
  rp: Client
  /** A second confidential third-party web client. */
  other: Client
  /** A public third-party web client (token_endpoint_auth_method none). */
  spa: Client
  /** A public native client with a loopback redirect URI (RFC 8252 §7.3). */
  native: Client
  /** A web client whose one redirect URI happens to be a loopback one. */
  webLoopback: Client
}

const worlds = new WeakMap<AttackContext, Promise<OAuthWorld>>()

function world (ctx: AttackContext): Promise<OAuthWorld> {
  let built = worlds.get(ctx)
  if (!built) {
    built = buildWorld(ctx)
    worlds.set(ctx, built)
  }
  return built
}

async function buildWorld (ctx: AttackContext): Promise<OAuthWorld> {
  const admin = await ctx.signup('oauth-admin')
  const { access_token: token } = await ctx.makeAdmin(admin)
  const register = async (metadata: Record<string, unknown>) => {
    const response = await registerClient(ctx, token, metadata)
    if (response.statusCode !== 201) throw new Error(`registering ${JSON.stringify(metadata)}: ${response.statusCode} ${response.body}`)
    return json<Client>(response)
  }
  return {
    adminEmail: admin.email,
    rp: await register({ client_name: 'Relying Party', redirect_uris: [RP], post_logout_redirect_uris: [RP_SIGNED_OUT], token_endpoint_auth_method: 'client_secret_basic' }),
    other: await register({ client_name: 'Other Party', redirect_uris: [OTHER], post_logout_redirect_uris: [OTHER_SIGNED_OUT], token_endpoint_auth_method: 'client_secret_basic' }),
    spa: await register({ client_name: 'Single Page', redirect_uris: [SPA], token_endpoint_auth_method: 'none' }),
    native: await register({ client_name: 'Desktop App', redirect_uris: [LOOPBACK], token_endpoint_auth_method: 'none', application_type: 'native' }),
    webLoopback: await register({ client_name: 'Web On Loopback', redirect_uris: [LOOPBACK], token_endpoint_auth_method: 'client_secret_basic', application_type: 'web' }),
  }
}

function registerClient (ctx: AttackContext, adminToken: string, metadata: Record<string, unknown>) {
  return ctx.app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${adminToken}` }, payload: metadata })
}

/** GET /oauth/authorize with exactly these parameters (undefined leaves one out), as a browser without cookies. */
function authorize (ctx: AttackContext, params: Record<string, string | undefined>, cookie?: string) {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.append(name, value)
  return ctx.app.inject({ method: 'GET', url: `/oauth/authorize?${query}`, ...(cookie ? { headers: { cookie } } : {}) })
}

/** A valid authorization request of `client` at its first redirect URI, with `overrides` (undefined removes). */
function request (client: Client, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: client.redirect_uris[0]!,
    scope: 'openid',
    state: 'st-attack',
    code_challenge: pkcePair().challenge,
    code_challenge_method: 'S256',
    ...overrides,
  }
}

interface Flow {
  browser: InjectedPageBrowser
  back: URL
  code: string
  verifier: string
  challenge: string
  redirectUri: string
}

/** The whole code flow through the hosted pages (sign-in, consent allowed) to the redirect that carries the code. */
async function codeFlow (
  ctx: AttackContext,
  client: Client,
  user: { email: string },
  options: { scope?: string; state?: string; nonce?: string; redirectUri?: string; browser?: InjectedPageBrowser } = {}
): Promise<Flow> {
  const browser = options.browser ?? new InjectedPageBrowser(ctx.app)
  const pkce = pkcePair()
  const redirectUri = options.redirectUri ?? client.redirect_uris[0]!
  const back = await followAuthorization(browser, authorizeUrl(ctx.config.issuer, {
    clientId: client.client_id,
    redirectUri,
    scope: options.scope ?? 'openid',
    ...(options.state === undefined ? {} : { state: options.state }),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    codeChallenge: pkce.challenge,
  }), { email: user.email, password: PASSWORD })
  const code = back.searchParams.get('code')
  if (!code) throw new Error(`the flow of ${client.client_id} ended without a code: ${back.href}`)
  return { browser, back, code, verifier: pkce.verifier, challenge: pkce.challenge, redirectUri }
}

type ClientAuth = { id: string; secret?: string | undefined; method: 'basic' | 'post' | 'none' }

/** How a client authenticates at the token endpoint as registered: Basic with its secret, or its client_id alone. */
const authOf = (client: Client): ClientAuth =>
  client.client_secret ? { id: client.client_id, secret: client.client_secret, method: 'basic' } : { id: client.client_id, method: 'none' }

/** POST /auth/token, form-encoded, with the client authentication given (undefined fields are left out). */
function tokenRequest (ctx: AttackContext, fields: Record<string, string | undefined>, auth?: ClientAuth) {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) if (value !== undefined) body.append(name, value)
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  if (auth?.method === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(auth.id)}:${encodeURIComponent(auth.secret ?? '')}`).toString('base64')}`
  } else if (auth) {
    body.append('client_id', auth.id)
    if (auth.method === 'post') body.append('client_secret', auth.secret ?? '')
  }
  return ctx.app.inject({ method: 'POST', url: '/auth/token', headers, payload: body.toString() })
}

/** The flow's code exchanged by `client` (its own authentication unless `auth`), with `overrides` of the form. */
function exchange (ctx: AttackContext, client: Client, flow: Flow, overrides: Record<string, string | undefined> = {}, auth: ClientAuth = authOf(client)) {
  return tokenRequest(ctx, { grant_type: 'authorization_code', code: flow.code, redirect_uri: flow.redirectUri, code_verifier: flow.verifier, ...overrides }, auth)
}

interface TokenAnswer {
  access_token: string
  refresh_token?: string
  id_token?: string
  scope: string
}

async function tokensOf (ctx: AttackContext, client: Client, flow: Flow): Promise<TokenAnswer> {
  const response = await exchange(ctx, client, flow)
  if (response.statusCode !== 200) throw new Error(`exchange for ${client.client_id}: ${response.statusCode} ${response.body}`)
  return json<TokenAnswer>(response)
}

const cookieOf = (browser: InjectedPageBrowser) => browser.cookieHeader()

/** RFC 6749 §4.1.2.1 / OAuth 2.1 §4.1.2.1: an error shown to the user, never a redirect to the presented URI. */
function assertErrorPage (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.headers.location ?? response.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 140)})`)
  t.match(String(response.headers['content-type']), /^text\/html/, `${label}: an HTML page`)
  t.notOk(response.headers.location, `${label}: no redirect`)
  t.notMatch(response.body, /http-equiv=["']?refresh/i, `${label}: no meta refresh`)
}

/** A redirect to exactly `registered` carrying `error`, the issuer (RFC 9207) and no code; the redirect's URL. */
function assertRedirectError (t: Test, ctx: AttackContext, response: Response, registered: string, error: string, label: string): URL | null {
  t.ok(response.statusCode === 302 || response.statusCode === 303, `${label}: a redirect (${response.statusCode} ${response.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 140)})`)
  const location = response.headers.location
  if (typeof location !== 'string') return null
  const url = new URL(location)
  t.equal(url.origin + url.pathname, registered, `${label}: to the registered redirect URI`)
  t.equal(url.searchParams.get('error'), error, `${label}: error=${error}`)
  t.same(url.searchParams.getAll('iss'), [ctx.config.issuer], `${label}: iss is the issuer, once`)
  t.notOk(url.searchParams.has('code'), `${label}: no code`)
  return url
}

function assertClientRefused (t: Test, response: Response, label: string) {
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 140)})`)
  t.equal(json(response).error, 'invalid_client', `${label}: invalid_client`)
  t.notOk(json(response).access_token, `${label}: no token`)
}

const codesOf = (ctx: AttackContext, userId: string) => ctx.app.db.authorizationCode.count({ where: { userId } })
const consentOf = (ctx: AttackContext, userId: string, clientId: string) => ctx.app.db.oauthGrant.count({ where: { userId, clientId } })

/** The CSP directive `name` of a page (its sources, in order), or null. */
function directive (csp: string | null, name: string): string | null {
  return (csp ?? '').split(';').map((part) => part.trim()).find((part) => part.startsWith(`${name} `)) ?? null
}

export const oauthCases: AttackCase[] = [
  {
    id: 'OA-01',
    title: 'a redirect_uri that is not exactly a registered one (prefix, dot segments, suffix, other path, port, userinfo, percent-encoding, fragment, added query, http) gets an error page, never a redirect',
    source: 'RFC 9700 §2.1, §4.1.1, §4.1.3; OAuth 2.1 §2.3.1, §4.1.1 (simple string comparison), §4.1.2.1; OIDC Core §3.1.2.1; RFC 6749 §10.6',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const control = await authorize(ctx, request(rp))
      t.equal(control.statusCode, 200, 'control: the registered URI gets the sign-in page')
      t.ok(formFields(control.body, '/oauth/sign-in'), 'control: with its form')
      const variants = [
        'https://rp.example/cb/../evil',
        'https://rp.example/cb/..%2Fevil',
        'https://rp.example/cbx',
        'https://rp.example/cb/extra',
        'https://rp.example/cb/',
        'https://rp.example/other',
        'https://rp.example:8443/cb',
        'https://rp.example:443/cb',
        'https://rp.example@evil.example/cb',
        'https://user:pass@rp.example/cb',
        'https://rp.example.evil.example/cb',
        'https://rp.example/%63b',
        'https://rp.example/c%62',
        'https://RP.EXAMPLE/cb',
        'https://rp.example/CB',
        'https://rp.example/cb#fragment',
        'https://rp.example/cb#',
        'https://rp.example/cb?next=https://evil.example',
        'https://rp.example/cb?',
        'http://rp.example/cb',
        '//rp.example/cb',
        ' https://rp.example/cb',
        'https://rp.example/cb\u0000',
        `${EVIL_ORIGIN}/cb`,
      ]
      for (const uri of variants) assertErrorPage(t, await authorize(ctx, request(rp, { redirect_uri: uri })), JSON.stringify(uri))
    },
  },
  {
    id: 'OA-02',
    title: "a native client's loopback redirect URI matches on any port but not on another path, host (localhost, 127.0.0.2, [::1]), scheme or a port that cannot exist; a web client's loopback URI gets no port freedom",
    source: 'RFC 8252 §7.3, §8.3; OAuth 2.1 §4.1.1, §8.4.2, §8.5.4; RFC 9700 §2.1, §4.1.3',
    async run (ctx, t) {
      const { native, webLoopback } = await world(ctx)
      for (const uri of [LOOPBACK, 'http://127.0.0.1:53211/cb', 'http://127.0.0.1:8080/cb']) {
        const response = await authorize(ctx, request(native, { redirect_uri: uri }))
        t.equal(response.statusCode, 200, `native ${uri}: the sign-in page`)
      }
      const refused = [
        'http://127.0.0.1:53211/other',
        'http://127.0.0.1:53211/cb/extra',
        'http://127.0.0.1:53211/',
        'http://localhost:53211/cb',
        'http://localhost/cb',
        'http://127.0.0.2:53211/cb',
        'http://[::1]:53211/cb',
        'https://127.0.0.1:53211/cb',
        'http://127.0.0.1:53211/cb?x=1',
        'http://127.0.0.1:53211/cb#f',
        'http://127.0.0.1:53211@evil.example/cb',
        'http://127.0.0.1.evil.example:53211/cb',
        'http://127.0.0.1:99999/cb',
        'http://127.0.0.1:123456/cb',
      ]
      for (const uri of refused) assertErrorPage(t, await authorize(ctx, request(native, { redirect_uri: uri })), `native ${uri}`)
      // An error that would go back to the redirect URI (prompt=none without a session) must not go to one that cannot exist either.
      for (const uri of ['http://127.0.0.1:99999/cb', 'http://localhost:53211/cb']) {
        assertErrorPage(t, await authorize(ctx, request(native, { redirect_uri: uri, prompt: 'none' })), `native ${uri}, prompt=none`)
      }

      // The port the app chose is where the code goes, and the token request names the same URI.
      const user = await ctx.signup('loopback')
      const flow = await codeFlow(ctx, native, user, { redirectUri: 'http://127.0.0.1:53211/cb' })
      t.equal(flow.back.origin + flow.back.pathname, 'http://127.0.0.1:53211/cb', 'the code goes to the port of the request')
      t.equal((await exchange(ctx, native, flow)).statusCode, 200, 'and is exchanged with that redirect_uri')

      t.equal((await authorize(ctx, request(webLoopback, { redirect_uri: LOOPBACK }))).statusCode, 200, 'web client: its registered loopback URI')
      for (const uri of ['http://127.0.0.1:53211/cb', 'http://127.0.0.1:80/cb']) {
        assertErrorPage(t, await authorize(ctx, request(webLoopback, { redirect_uri: uri })), `web client ${uri}`)
      }
    },
  },
  {
    id: 'OA-03',
    title: 'authorization code injection: a code issued to one client is refused to another client, and with another redirect_uri',
    source: 'RFC 9700 §4.5; OAuth 2.1 §3.2.1, §4.1.3, §7.5.1; RFC 6749 §4.1.3, §10.6',
    async run (ctx, t) {
      const { rp, other, spa, native } = await world(ctx)
      const user = await ctx.signup('code-injection')
      const toRp = await codeFlow(ctx, rp, user)
      const byOther = await exchange(ctx, rp, toRp, {}, authOf(other))
      assertInvalidGrant(t, byOther, "another confidential client, with its own secret, presents rp's code")
      t.notOk(json(byOther).access_token, 'no token for the other client')

      const toRpAgain = await codeFlow(ctx, rp, user, { browser: toRp.browser })
      assertInvalidGrant(t, await exchange(ctx, rp, toRpAgain, {}, authOf(spa)), "a public client presents rp's code with its client_id")

      const toSpa = await codeFlow(ctx, spa, user, { browser: toRp.browser })
      assertInvalidGrant(t, await exchange(ctx, spa, toSpa, {}, authOf(native)), "another public client presents the spa's code")

      const elsewhere = await codeFlow(ctx, rp, user, { browser: toRp.browser })
      for (const uri of [OTHER, 'https://rp.example/cb/extra', 'https://rp.example/cb?x=1']) {
        assertInvalidGrant(t, await exchange(ctx, rp, elsewhere, { redirect_uri: uri }), `the code with redirect_uri ${uri}`)
      }
    },
  },
  {
    id: 'OA-04',
    title: 'authorization code replay: a second use fails and revokes what the first issued (its access token refused at /users/me, its refresh token dead), raced or not',
    source: 'OAuth 2.1 §4.1.3, §7.5.3; RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5, §4.14',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const user = await ctx.signup('code-replay')
      // profile: GET /users/me's scope.
      const flow = await codeFlow(ctx, rp, user, { scope: 'openid profile offline_access' })
      const first = await tokensOf(ctx, rp, flow)
      t.ok(first.refresh_token, 'the first use gets a refresh token (offline_access)')
      t.equal((await ctx.bearer(first.access_token)).statusCode, 200, 'its access token works')
      assertInvalidGrant(t, await exchange(ctx, rp, flow), 'the second use')
      await ctx.app.revocations.sync()
      assertInvalidToken(t, await ctx.bearer(first.access_token), 'the first use\'s access token')
      assertInvalidGrant(t, await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: first.refresh_token }, authOf(rp)), 'the first use\'s refresh token')

      const raced = await codeFlow(ctx, rp, user, { scope: 'openid profile offline_access', browser: flow.browser })
      const answers = await Promise.all([exchange(ctx, rp, raced), exchange(ctx, rp, raced)])
      const won = answers.filter((answer) => answer.statusCode === 200)
      t.ok(won.length <= 1, `two concurrent uses: at most one answer with tokens (${answers.map((a) => a.statusCode).join(', ')})`)
      await ctx.app.revocations.sync()
      for (const answer of won) {
        const tokens = json<TokenAnswer>(answer)
        assertInvalidToken(t, await ctx.bearer(tokens.access_token), 'the raced winner\'s access token, once the other use is seen')
        assertInvalidGrant(t, await tokenRequest(ctx, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, authOf(rp)), 'the raced winner\'s refresh token')
      }
    },
  },
  {
    id: 'OA-05',
    title: 'PKCE downgrade: code_challenge_method plain, or a challenge without a method, is refused at the redirect URI; a code exchanged without its code_verifier or with a wrong one fails and is then spent',
    source: 'RFC 9700 §2.1.1, §4.8; OAuth 2.1 §4.1.1, §4.1.2.1, §4.1.3, §7.5.2; RFC 7636 §4.3, §4.6',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const { verifier } = pkcePair()
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { code_challenge: verifier, code_challenge_method: 'plain' })), RP, 'invalid_request', 'code_challenge_method=plain')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { code_challenge: verifier, code_challenge_method: undefined })), RP, 'invalid_request', 'a challenge without a method (plain by default)')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { code_challenge_method: 's256' })), RP, 'invalid_request', 'code_challenge_method=s256 (not the registered name)')

      const user = await ctx.signup('pkce-downgrade')
      const withoutVerifier = await codeFlow(ctx, rp, user)
      const missing = await exchange(ctx, rp, withoutVerifier, { code_verifier: undefined })
      t.equal(missing.statusCode, 400, `without code_verifier: 400 (${missing.body.slice(0, 120)})`)
      t.notOk(json(missing).access_token, 'without code_verifier: no token')
      assertInvalidGrant(t, await exchange(ctx, rp, withoutVerifier), 'the same code then with its right verifier: spent')

      const wrongVerifier = await codeFlow(ctx, rp, user, { browser: withoutVerifier.browser })
      assertInvalidGrant(t, await exchange(ctx, rp, wrongVerifier, { code_verifier: pkcePair().verifier }), 'a wrong code_verifier')
      assertInvalidGrant(t, await exchange(ctx, rp, wrongVerifier), 'the same code then with its right verifier: spent')

      const challengeAsVerifier = await codeFlow(ctx, rp, user, { browser: withoutVerifier.browser })
      assertInvalidGrant(t, await exchange(ctx, rp, challengeAsVerifier, { code_verifier: challengeAsVerifier.challenge }), 'the code_challenge itself (seen in the request) as the verifier')
    },
  },
  {
    id: 'OA-06',
    title: 'missing PKCE: an authorization request without code_challenge is refused at the redirect URI for public and confidential clients, even with a signed-in browser; no code is issued',
    source: 'OAuth 2.1 §4.1.1, §4.1.2.1, §7.5.1; RFC 9700 §2.1.1, §4.5.3.1; RFC 7636 §4.4.1',
    async run (ctx, t) {
      const { rp, spa } = await world(ctx)
      const user = await ctx.signup('no-pkce')
      const signedIn = await codeFlow(ctx, rp, user)
      await codeFlow(ctx, spa, user, { browser: signedIn.browser })
      const before = await codesOf(ctx, user.id)
      for (const client of [rp, spa]) {
        for (const cookie of [undefined, cookieOf(signedIn.browser)]) {
          const label = `${client === rp ? 'confidential' : 'public'} client, ${cookie ? 'signed in' : 'no browser session'}`
          const url = assertRedirectError(t, ctx, await authorize(ctx, request(client, { code_challenge: undefined, code_challenge_method: undefined }), cookie), client.redirect_uris[0]!, 'invalid_request', label)
          t.equal(url?.searchParams.get('state'), 'st-attack', `${label}: state returned`)
          assertRedirectError(t, ctx, await authorize(ctx, request(client, { code_challenge: undefined }), cookie), client.redirect_uris[0]!, 'invalid_request', `${label}, a method without a challenge`)
        }
      }
      t.equal(await codesOf(ctx, user.id), before, 'no code was issued')
    },
  },
  {
    id: 'OA-07',
    title: 'mix-up: every authorization response, success and error (access_denied, invalid_scope, unsupported_response_type, invalid_request, login_required, consent_required), carries iss = the issuer',
    source: 'RFC 9207 §2, §2.4; RFC 9700 §4.4.2.1; OAuth 2.1 §4.1.2, §4.1.2.1, §7.15.1',
    async run (ctx, t) {
      const { rp, other } = await world(ctx)
      const issuer = ctx.config.issuer
      const metadata = json<{ issuer: string; authorization_response_iss_parameter_supported: boolean }>(await ctx.app.inject({ url: '/.well-known/openid-configuration' }))
      t.equal(metadata.issuer, issuer, 'discovery names the issuer')
      t.equal(metadata.authorization_response_iss_parameter_supported, true, 'and says authorization responses carry iss')

      const user = await ctx.signup('mix-up')
      const flow = await codeFlow(ctx, rp, user, { state: 'st-ok' })
      t.same(flow.back.searchParams.getAll('iss'), [issuer], 'success: iss is the issuer, once')
      t.equal(flow.back.searchParams.get('state'), 'st-ok', 'success: state')

      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { scope: 'openid no-such-scope' })), RP, 'invalid_scope', 'invalid_scope')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { response_type: 'token' })), RP, 'unsupported_response_type', 'unsupported_response_type')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { code_challenge: undefined })), RP, 'invalid_request', 'invalid_request')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { prompt: 'none' })), RP, 'login_required', 'login_required')
      assertRedirectError(t, ctx, await authorize(ctx, request(other, { prompt: 'none' }), cookieOf(flow.browser)), OTHER, 'consent_required', 'consent_required')

      // access_denied: the user denies on the consent page.
      const denier = await ctx.signup('mix-up-deny')
      const denied = await followAuthorization(new InjectedPageBrowser(ctx.app), authorizeUrl(issuer, { clientId: rp.client_id, redirectUri: RP, scope: 'openid', state: 'st-deny', codeChallenge: pkcePair().challenge }), {
        email: denier.email,
        password: PASSWORD,
        consent: 'deny',
      })
      t.equal(denied.origin + denied.pathname, RP, 'access_denied: to the registered redirect URI')
      t.equal(denied.searchParams.get('error'), 'access_denied', 'access_denied')
      t.same(denied.searchParams.getAll('iss'), [issuer], 'access_denied: iss is the issuer, once')
      t.equal(denied.searchParams.get('state'), 'st-deny', 'access_denied: state')
    },
  },
  {
    id: 'OA-08',
    title: "consent CSRF: the consent form with a wrong or missing csrf field, a foreign, missing or null Origin, or another browser's interaction is refused and issues no code",
    source: 'RFC 6749 §10.12; OAuth 2.1 §7.10; RFC 9700 §4.7; OWASP Cross-Site Request Forgery Prevention Cheat Sheet (double submit, Origin); ASVS 5.0 V3.5.1',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const start = authorizeUrl(ctx.config.issuer, { clientId: rp.client_id, redirectUri: RP, scope: 'openid', codeChallenge: pkcePair().challenge })
      const atConsent = async (label: string) => {
        const account = await ctx.signup(label)
        const browser = new InjectedPageBrowser(ctx.app)
        const signInPage = await (await browser.get(start)).text()
        const consentPage = await (await browser.post('/oauth/sign-in', { ...formFields(signInPage, '/oauth/sign-in')!, email: account.email, password: PASSWORD })).text()
        const fields = formFields(consentPage, '/oauth/consent')
        if (!fields) throw new Error(`${label}: no consent page: ${consentPage.slice(0, 300)}`)
        return { account, browser, fields }
      }
      const victim = await atConsent('consent-victim')
      const attacker = await atConsent('consent-attacker')
      const allow = { decision: 'allow' }
      const { interaction, csrf } = victim.fields
      // Each posted from the victim's browser (its cookies), from this service's origin unless `origin` says otherwise (null: no Origin).
      const attempts: { label: string; fields: Record<string, string>; origin?: string | null }[] = [
        { label: 'a wrong csrf field', fields: { interaction: interaction!, csrf: randomBytes(32).toString('base64url'), ...allow } },
        { label: 'no csrf field', fields: { interaction: interaction!, ...allow } },
        { label: 'an empty csrf field', fields: { interaction: interaction!, csrf: '', ...allow } },
        { label: 'a foreign Origin', fields: { ...victim.fields, ...allow }, origin: EVIL_ORIGIN },
        { label: 'no Origin', fields: { ...victim.fields, ...allow }, origin: null },
        { label: 'Origin null', fields: { ...victim.fields, ...allow }, origin: 'null' },
        { label: "the attacker's interaction and csrf", fields: { ...attacker.fields, ...allow } },
        { label: "the attacker's interaction with the victim's csrf", fields: { interaction: attacker.fields.interaction!, csrf: csrf!, ...allow } },
      ]
      for (const { label, fields, origin } of attempts) {
        const response = origin === undefined ? await victim.browser.post('/oauth/consent', fields) : await victim.browser.post('/oauth/consent', fields, origin)
        t.ok(response.status >= 400 && response.status < 500, `${label}: refused (${response.status})`)
        t.notOk(response.headers.get('location'), `${label}: no redirect`)
      }
      t.equal(await codesOf(ctx, victim.account.id), 0, 'no code was issued for the victim')
      t.equal(await codesOf(ctx, attacker.account.id), 0, 'nor for the attacker')
      t.equal(await consentOf(ctx, victim.account.id, rp.client_id), 0, 'no consent was stored')

      const allowed = await victim.browser.post('/oauth/consent', { ...victim.fields, ...allow })
      t.equal(allowed.status, 303, 'control: the victim\'s own form goes through')
      t.ok(new URL(allowed.headers.get('location') ?? 'about:blank').searchParams.get('code'), 'control: with a code')
    },
  },
  {
    id: 'OA-09',
    title: "clickjacking: the hosted pages (sign-in, its error, sign-up, second step, consent, logout, signed out, error) cannot be framed, and their form-action names this service and the client's redirect origin only",
    source: 'RFC 9700 §4.16; OAuth 2.1 §7.11; RFC 6749 §10.13; W3C CSP Level 3 (frame-ancestors, form-action); RFC 7034; DESIGN §3.15',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const issuer = ctx.config.issuer
      const start = authorizeUrl(issuer, { clientId: rp.client_id, redirectUri: RP, scope: 'openid', codeChallenge: pkcePair().challenge })
      const pages: [string, globalThis.Response, string][] = []

      const browser = new InjectedPageBrowser(ctx.app)
      const signIn = await browser.get(start)
      const signInFields = formFields(await signIn.clone().text(), '/oauth/sign-in')!
      pages.push(['sign-in', signIn, "form-action 'self' https://rp.example"])
      pages.push(['sign-up', await browser.post('/oauth/sign-up/form', { interaction: signInFields.interaction!, csrf: signInFields.csrf! }), "form-action 'self' https://rp.example"])
      const user = await ctx.signup('framing')
      pages.push(['sign-in with an error', await browser.post('/oauth/sign-in', { ...signInFields, email: user.email, password: 'not the password' }), "form-action 'self' https://rp.example"])
      pages.push(['consent', await browser.post('/oauth/sign-in', { ...signInFields, email: user.email, password: PASSWORD }), "form-action 'self' https://rp.example"])

      const withFactor = await ctx.signup('framing-totp')
      await centreStep(ctx)
      await enrolTotp(ctx.app, withFactor.access_token, ctx.clock.now())
      const secondBrowser = new InjectedPageBrowser(ctx.app)
      const secondSignIn = formFields(await (await secondBrowser.get(start)).text(), '/oauth/sign-in')!
      pages.push(['second step', await secondBrowser.post('/oauth/sign-in', { ...secondSignIn, email: withFactor.email, password: PASSWORD }), "form-action 'self' https://rp.example"])

      pages.push(['logout confirmation', await browser.get(`/oauth/logout?client_id=${rp.client_id}&post_logout_redirect_uri=${encodeURIComponent(RP_SIGNED_OUT)}`), "form-action 'self' https://rp.example"])
      pages.push(['signed out', await new InjectedPageBrowser(ctx.app).get('/oauth/logout'), "form-action 'self'"])
      pages.push(['error', await browser.get(authorizeUrl(issuer, { clientId: rp.client_id, redirectUri: `${EVIL_ORIGIN}/cb`, codeChallenge: pkcePair().challenge })), "form-action 'self'"])
      pages.push(['error of a form', await browser.post('/oauth/consent', { interaction: 'x', csrf: 'y', decision: 'allow' }, EVIL_ORIGIN), "form-action 'self'"])

      for (const [label, page, formAction] of pages) {
        const html = await page.text()
        t.match(page.headers.get('content-type'), /^text\/html/, `${label} (${page.status}): a page`)
        const csp = page.headers.get('content-security-policy')
        t.equal(page.headers.get('x-frame-options'), 'DENY', `${label}: X-Frame-Options DENY`)
        t.equal(directive(csp, 'frame-ancestors'), "frame-ancestors 'none'", `${label}: frame-ancestors 'none'`)
        t.equal(directive(csp, 'form-action'), formAction, `${label}: ${formAction}`)
        t.equal(directive(csp, 'default-src'), "default-src 'none'", `${label}: nothing else loads`)
        if (label === 'consent') t.ok(formFields(html, '/oauth/consent'), 'the consent page is the one checked')
        if (label === 'sign-up') t.ok(formFields(html, '/oauth/sign-up'), 'the sign-up page is the one checked')
        if (label === 'second step') t.ok(formFields(html, '/oauth/sign-in/second-factor'), 'the second-step page is the one checked')
        if (label === 'logout confirmation') t.ok(formFields(html, '/oauth/logout'), 'the logout confirmation is the one checked')
      }
    },
  },
  {
    id: 'OA-10',
    title: 'open redirect through errors: an unknown client, a missing or repeated client_id, or an unregistered redirect_uri gets an error page whatever else is wrong, never a redirect',
    source: 'RFC 9700 §4.11.2; OAuth 2.1 §4.1.2.1, §7.13.2; RFC 6749 §4.1.2.1',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const evil = `${EVIL_ORIGIN}/cb`
      const errors: Record<string, Record<string, string | undefined>> = {
        'response_type=token': { response_type: 'token' },
        'no response_type': { response_type: undefined },
        'no code_challenge': { code_challenge: undefined },
        'code_challenge_method=plain': { code_challenge_method: 'plain' },
        'prompt=none': { prompt: 'none' },
        'an unknown scope': { scope: 'openid admin:everything' },
        'a request object': { request: 'eyJhbGciOiJub25lIn0.e30.' },
        'a repeated-looking state': { state: 'a&state=b' },
      }
      for (const [what, overrides] of Object.entries(errors)) {
        assertErrorPage(t, await authorize(ctx, request(rp, { ...overrides, redirect_uri: evil })), `unregistered redirect_uri, ${what}`)
        assertErrorPage(t, await authorize(ctx, request(rp, { ...overrides, client_id: 'no-such-client', redirect_uri: evil })), `unknown client, ${what}`)
      }
      assertErrorPage(t, await authorize(ctx, request(rp, { client_id: undefined, redirect_uri: evil })), 'no client_id')
      assertErrorPage(t, await authorize(ctx, request(rp, { redirect_uri: OTHER })), "another client's redirect URI")
      assertErrorPage(t, await authorize(ctx, request(rp, { redirect_uri: undefined })), 'no redirect_uri')
      const repeated = (name: string, values: string[]) => {
        const query = new URLSearchParams(request(rp, { [name]: undefined }) as Record<string, string>)
        for (const value of values) query.append(name, value)
        return ctx.app.inject({ url: `/oauth/authorize?${query}` })
      }
      assertErrorPage(t, await repeated('redirect_uri', [RP, evil]), 'redirect_uri twice (registered, then foreign)')
      assertErrorPage(t, await repeated('redirect_uri', [evil, RP]), 'redirect_uri twice (foreign, then registered)')
      assertErrorPage(t, await repeated('client_id', [rp.client_id, 'no-such-client']), 'client_id twice')
    },
  },
  {
    id: 'OA-11',
    title: 'open redirect through logout: a post_logout_redirect_uri not registered for the named client (foreign, another client\'s, prefix, no client, forged hint) shows a page, never redirects, and ends no session',
    source: 'OpenID Connect RP-Initiated Logout 1.0 §2, §3; RFC 9700 §4.11.2; OAuth 2.1 §7.13.2',
    async run (ctx, t) {
      const { rp, other } = await world(ctx)
      const user = await ctx.signup('logout-redirect')
      const flow = await codeFlow(ctx, rp, user)
      const { id_token: idToken } = await tokensOf(ctx, rp, flow)
      const sid = decodePart(idToken!, 1).sid as string
      const logout = (params: Record<string, string>) => ctx.app.inject({ url: `/oauth/logout?${new URLSearchParams(params)}`, headers: { cookie: cookieOf(flow.browser) } })
      const forged = ctx.attackerSigned({ typ: 'JWT' }, { aud: rp.client_id, sid })
      const variants: [string, Record<string, string>][] = [
        ['a foreign URI', { client_id: rp.client_id, post_logout_redirect_uri: `${EVIL_ORIGIN}/` }],
        ["another client's URI", { client_id: rp.client_id, post_logout_redirect_uri: OTHER_SIGNED_OUT }],
        ['a longer path', { client_id: rp.client_id, post_logout_redirect_uri: `${RP_SIGNED_OUT}/extra` }],
        ['an added query', { client_id: rp.client_id, post_logout_redirect_uri: `${RP_SIGNED_OUT}?next=${EVIL_ORIGIN}` }],
        ['userinfo', { client_id: rp.client_id, post_logout_redirect_uri: 'https://rp.example@evil.example/signed-out' }],
        ['no client named', { post_logout_redirect_uri: RP_SIGNED_OUT }],
        ['an unknown client', { client_id: 'no-such-client', post_logout_redirect_uri: RP_SIGNED_OUT }],
        ['the hint of the current session, a foreign URI', { id_token_hint: idToken!, post_logout_redirect_uri: `${EVIL_ORIGIN}/` }],
        ["the hint of rp, other's client_id and URI", { id_token_hint: idToken!, client_id: other.client_id, post_logout_redirect_uri: OTHER_SIGNED_OUT }],
        ['a forged hint', { id_token_hint: forged, post_logout_redirect_uri: RP_SIGNED_OUT }],
      ]
      for (const [label, params] of variants) assertErrorPage(t, await logout({ ...params, state: 'st-out' }), label)
      const session = await ctx.app.db.session.findUniqueOrThrow({ where: { id: sid } })
      t.equal(session.revokedAt, null, 'the browser session is still live')

      const back = await logout({ id_token_hint: idToken!, post_logout_redirect_uri: RP_SIGNED_OUT, state: 'st-out' })
      t.equal(back.statusCode, 302, 'control: the registered URI with the current session\'s hint redirects')
      t.equal(back.headers.location, `${RP_SIGNED_OUT}?state=st-out`, 'control: to it, with state')
      t.not((await ctx.app.db.session.findUniqueOrThrow({ where: { id: sid } })).revokedAt, null, 'control: and ends the browser session')
    },
  },
  {
    id: 'OA-12',
    title: 'prompt=none answers at the registered redirect URI only, never with a code it should not give: login_required without a browser session, consent_required for a third-party client without consent or asking more',
    source: 'OIDC Core §3.1.2.1 (prompt), §3.1.2.6; OAuth 2.1 §4.1.2.1; RFC 9700 §4.11.2',
    async run (ctx, t) {
      const { rp, other } = await world(ctx)
      const none = { prompt: 'none' }
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, none)), RP, 'login_required', 'no browser session')
      assertErrorPage(t, await authorize(ctx, request(rp, { ...none, redirect_uri: `${EVIL_ORIGIN}/cb` })), 'no browser session, an unregistered redirect_uri')

      const user = await ctx.signup('prompt-none')
      const signedIn = await codeFlow(ctx, other, user)
      const cookie = cookieOf(signedIn.browser)
      const before = await codesOf(ctx, user.id)
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, none), cookie), RP, 'consent_required', 'signed in, no consent for this client')
      assertErrorPage(t, await authorize(ctx, request(rp, { ...none, redirect_uri: `${EVIL_ORIGIN}/cb` }), cookie), 'signed in, an unregistered redirect_uri')
      t.equal(await codesOf(ctx, user.id), before, 'no code without consent')

      await codeFlow(ctx, rp, user, { browser: signedIn.browser, scope: 'openid' })
      const consented = await codesOf(ctx, user.id)
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { ...none, scope: 'openid email' }), cookie), RP, 'consent_required', 'consented to openid, asking openid email')
      assertRedirectError(t, ctx, await authorize(ctx, request(rp, { ...none, scope: 'openid offline_access' }), cookie), RP, 'consent_required', 'consented to openid, asking offline_access')
      t.equal(await codesOf(ctx, user.id), consented, 'no code for scopes not consented')

      const granted = await authorize(ctx, request(rp, none), cookie)
      t.ok(granted.statusCode === 302 || granted.statusCode === 303, `control: consented scopes with a browser session redirect (${granted.statusCode})`)
      const url = new URL(String(granted.headers.location))
      t.equal(url.origin + url.pathname, RP, 'control: at the registered URI')
      t.ok(url.searchParams.get('code'), 'control: with a code')
    },
  },
  {
    id: 'OA-13',
    title: "state comes back verbatim in success and error responses, and the ID token carries the request's nonce (none when none was sent)",
    source: 'OAuth 2.1 §4.1.2, §4.1.2.1; RFC 6749 §4.1.2, §10.12; OIDC Core §3.1.2.1, §3.1.3.7 (11), §15.5.2; RFC 9700 §4.5.3.2',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const state = `st ☃ &=?#/%20+é${randomBytes(8).toString('base64url')}`
      const nonce = `n-${randomBytes(16).toString('base64url')}`
      const user = await ctx.signup('state-nonce')
      const flow = await codeFlow(ctx, rp, user, { state, nonce })
      t.equal(flow.back.searchParams.get('state'), state, 'success: state verbatim')
      t.same(flow.back.searchParams.getAll('state'), [state], 'success: state once')
      const { id_token: idToken } = await tokensOf(ctx, rp, flow)
      t.equal(decodePart(idToken!, 1).nonce, nonce, "the ID token's nonce is the request's")

      const error = assertRedirectError(t, ctx, await authorize(ctx, request(rp, { state, prompt: 'none' })), RP, 'login_required', 'error')
      t.equal(error?.searchParams.get('state'), state, 'error: state verbatim')

      const second = await codeFlow(ctx, rp, user, { browser: flow.browser, nonce: `n-${randomBytes(16).toString('base64url')}` })
      const secondToken = (await tokensOf(ctx, rp, second)).id_token!
      t.not(decodePart(secondToken, 1).nonce, nonce, 'another request, its own nonce: the first nonce is not replayed')
      const withoutNonce = await codeFlow(ctx, rp, user, { browser: flow.browser })
      t.notOk('nonce' in decodePart((await tokensOf(ctx, rp, withoutNonce)).id_token!, 1), 'no nonce sent, no nonce claim')
    },
  },
  {
    id: 'OA-14',
    title: "an ID token issued to one client fails another client's validation (aud = client_id) and is refused as another client's logout hint",
    source: 'OIDC Core §2 (aud), §3.1.3.7 (3); RFC 8725 §3.9; OpenID Connect RP-Initiated Logout 1.0 §2',
    async run (ctx, t) {
      const { rp, other } = await world(ctx)
      const user = await ctx.signup('id-token-replay')
      const nonce = randomBytes(16).toString('base64url')
      const { id_token: idToken } = await tokensOf(ctx, rp, await codeFlow(ctx, rp, user, { nonce }))
      const jwks = createLocalJWKSet(json<JSONWebKeySet>(await ctx.app.inject({ url: '/.well-known/jwks.json' })))
      const validation = { issuer: ctx.config.issuer, algorithms: ['ES256'], currentDate: new Date(ctx.clock.now()) }
      const { payload } = await jwtVerify(idToken!, jwks, { ...validation, audience: rp.client_id })
      t.equal(payload.aud, rp.client_id, 'control: valid at rp, whose client_id is the audience')
      t.equal(payload.nonce, nonce, 'control: with its nonce')
      t.equal(payload.sub, user.id, 'control: for the user')
      await t.rejects(jwtVerify(idToken!, jwks, { ...validation, audience: other.client_id }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' }, "another client's validation refuses it (aud)")
      t.notOk(payload.azp !== undefined && payload.azp !== rp.client_id, 'no azp naming anyone else')

      const hinted = await ctx.app.inject({ url: `/oauth/logout?${new URLSearchParams({ id_token_hint: idToken!, client_id: other.client_id, post_logout_redirect_uri: OTHER_SIGNED_OUT })}` })
      assertErrorPage(t, hinted, "rp's ID token as the other client's logout hint")
    },
  },
  {
    id: 'OA-15',
    title: "ID token / access token confusion: the access token's aud is the resource audience, never the client; the ID token (typ JWT) is refused as a Bearer token",
    source: 'RFC 9068 §2.1, §2.2, §4; RFC 8725 §3.11, §3.12; RFC 9700 §4.10.2; OIDC Core §2; OAuth 2.1 §7.1.4',
    async run (ctx, t) {
      const { rp } = await world(ctx)
      const user = await ctx.signup('token-confusion')
      const tokens = await tokensOf(ctx, rp, await codeFlow(ctx, rp, user, { scope: 'openid profile email' }))
      const access = decodePart(tokens.access_token, 1)
      t.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt', 'the access token is an at+jwt')
      t.same([access.aud].flat(), [ctx.config.audience], `the access token's audience is the resource (${ctx.config.audience})`)
      t.notOk([access.aud].flat().includes(rp.client_id), 'never the client')
      t.equal(access.client_id, rp.client_id, 'the client is in client_id')
      t.equal(decodeProtectedHeader(tokens.id_token!).typ, 'JWT', 'the ID token is typ JWT')
      t.equal(decodePart(tokens.id_token!, 1).aud, rp.client_id, "the ID token's audience is the client")

      t.equal((await ctx.bearer(tokens.access_token)).statusCode, 200, 'control: the access token is accepted')
      assertInvalidToken(t, await ctx.bearer(tokens.id_token!), 'the ID token at GET /users/me')
      assertInvalidToken(t, await ctx.app.inject({ url: '/oauth/userinfo', headers: { authorization: `Bearer ${tokens.id_token}` } }), 'the ID token at GET /oauth/userinfo')
      const info = await ctx.app.inject({ url: '/oauth/userinfo', headers: { authorization: `Bearer ${tokens.access_token}` } })
      t.equal(info.statusCode, 200, 'control: userinfo with the access token')
    },
  },
  {
    id: 'OA-16',
    title: 'client authentication: a public client cannot pass for a confidential one with a secret, and a confidential client without its secret, with a wrong one or by another method gets 401 invalid_client',
    source: 'OAuth 2.1 §2.4, §3.2.1, §3.2.4, §7.3; RFC 6749 §2.3.1, §3.2.1, §5.2; RFC 9700 §2.5',
    async run (ctx, t) {
      const { rp, spa } = await world(ctx)
      const user = await ctx.signup('client-auth')
      const toSpa = await codeFlow(ctx, spa, user)
      assertClientRefused(t, await exchange(ctx, spa, toSpa, {}, { id: spa.client_id, secret: 'made-up secret', method: 'post' }), 'public client with a client_secret in the body')
      const basic = await exchange(ctx, spa, toSpa, {}, { id: spa.client_id, secret: 'made-up secret', method: 'basic' })
      assertClientRefused(t, basic, 'public client with Basic credentials')
      t.match(String(basic.headers['www-authenticate']), /^Basic/, 'Basic credentials refused with a Basic challenge')
      t.equal((await exchange(ctx, spa, toSpa)).statusCode, 200, 'control: the public client by its client_id alone')

      const toRp = await codeFlow(ctx, rp, user, { browser: toSpa.browser })
      assertClientRefused(t, await exchange(ctx, rp, toRp, {}, { id: rp.client_id, method: 'none' }), 'confidential client by its client_id alone')
      assertClientRefused(t, await exchange(ctx, rp, toRp, {}, { id: rp.client_id, secret: `${rp.client_secret}x`, method: 'basic' }), 'confidential client with a wrong secret')
      assertClientRefused(t, await exchange(ctx, rp, toRp, {}, { id: rp.client_id, secret: '', method: 'basic' }), 'confidential client with an empty secret')
      assertClientRefused(t, await exchange(ctx, rp, toRp, {}, { id: rp.client_id, secret: rp.client_secret, method: 'post' }), 'confidential client_secret_basic client by client_secret_post')
      t.equal((await exchange(ctx, rp, toRp)).statusCode, 200, 'control: the confidential client with its secret, as registered')
    },
  },
  {
    id: 'OA-17',
    title: 'client_credentials is for confidential clients only: registration refuses it with token_endpoint_auth_method none, a client holding it cannot be made public, and public clients asking for it get no token',
    source: 'OAuth 2.1 §4.2, §2.1; RFC 6749 §4.4, §2.1; RFC 7591 §2, §3.2.2 (invalid_client_metadata)',
    async run (ctx, t) {
      const { adminEmail, spa, native } = await world(ctx)
      const admin = (await ctx.login(adminEmail)).access_token
      for (const grantTypes of [['client_credentials'], ['authorization_code', 'client_credentials']]) {
        const refused = await registerClient(ctx, admin, { client_name: 'Public Service', redirect_uris: grantTypes.includes('authorization_code') ? [SPA] : [], grant_types: grantTypes, token_endpoint_auth_method: 'none' })
        t.equal(refused.statusCode, 400, `registration of a public client with ${grantTypes.join(' ')}: 400`)
        t.equal(json(refused).code, 'invalid_client_metadata', 'invalid_client_metadata')
      }
      const service = await registerClient(ctx, admin, { client_name: 'Service', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' })
      t.equal(service.statusCode, 201, 'control: a confidential client may hold it')
      const registered = json<Client>(service)
      const madePublic = await ctx.app.inject({ method: 'PATCH', url: `/admin/clients/${registered.client_id}`, headers: { authorization: `Bearer ${admin}` }, payload: { token_endpoint_auth_method: 'none' } })
      t.equal(madePublic.statusCode, 400, 'the confidential client holding client_credentials cannot be made public')
      const issued = await tokenRequest(ctx, { grant_type: 'client_credentials' }, authOf(registered))
      t.equal(issued.statusCode, 200, 'control: the confidential client gets its token')
      t.equal(decodePart(json<TokenAnswer>(issued).access_token, 1).sub, registered.client_id, 'control: for itself')
      t.notOk(json(issued).refresh_token, 'control: without a refresh token')

      for (const [label, auth] of [
        ['the registered public client', authOf(spa)],
        ['the registered public native client', authOf(native)],
        ['the configured public client mobile', { id: 'mobile', method: 'none' }],
        ['no client named (the default client)', undefined],
      ] as [string, ClientAuth | undefined][]) {
        const response = await tokenRequest(ctx, { grant_type: 'client_credentials' }, auth)
        const error = response.statusCode === 401 ? 'invalid_client' : 'unauthorized_client'
        t.ok([400, 401].includes(response.statusCode), `${label}: refused (${response.statusCode} ${response.body.slice(0, 120)})`)
        t.equal(json(response).error, error, `${label}: ${error}`)
        t.notOk(json(response).access_token, `${label}: no token`)
      }
    },
  },
]
