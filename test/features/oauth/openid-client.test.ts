import { createHash } from 'node:crypto'
import { decodeProtectedHeader } from 'jose'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import t, { type Test } from 'tap'
import { json, listeningTestApp } from '../../helpers/app.js'
import { injectAs, markAddressVerified, PASSWORD, signup, signupAdmin, type Account } from '../../helpers/users.js'
import { formTo, textOf, UserAgent, type Credentials } from './user-agent.js'

/**
 * The authorization server and OpenID provider (DESIGN §3.14, §3.15) as a
 * certified relying party sees it: openid-client v6 against the service
 * listening on loopback, over real HTTP. Discovery; the authorization code
 * flow with PKCE, state and nonce for confidential clients (client_secret_basic,
 * client_secret_post) and a public one, the ID token validated by
 * openid-client; UserInfo; refresh with offline_access; RP-initiated logout;
 * client credentials. oauth4webapi validates every access token as an RFC 9068
 * JWT. The browser is test/features/oauth/user-agent.ts: cookies, redirects
 * and the hosted pages' forms.
 */

const AUDIENCE = 'https://api.example.test'
const REDIRECT_URI = 'https://rp.example.test/callback'
const SIGNED_OUT_URI = 'https://rp.example.test/signed-out'

const service = await listeningTestApp(() => ({ ACCESS_TOKEN_AUDIENCE: AUDIENCE }))
t.teardown(() => service.close())
const { app, issuer } = service

const insecure = { execute: [client.allowInsecureRequests] }

interface RegisteredClient {
  client_id: string
  client_secret?: string
  token_endpoint_auth_method: string
  grant_types: string[]
}

const admin = await signupAdmin(app)

/** POST /admin/clients as the admin; throws unless 201. */
async function register (body: Record<string, unknown>): Promise<RegisteredClient> {
  const response = await injectAs(app, admin.access_token, 'POST', '/admin/clients', body)
  if (response.statusCode !== 201) throw new Error(`register client: ${response.statusCode} ${response.body}`)
  return json<RegisteredClient>(response)
}

const webClient = (name: string, method: string) =>
  register({
    client_name: name,
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [SIGNED_OUT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: method,
  })

const basicClient = await webClient('Basic RP', 'client_secret_basic')
const postClient = await webClient('Post RP', 'client_secret_post')
const publicClient = await webClient('Public RP', 'none')
const serviceClient = await register({
  client_name: 'Links worker',
  redirect_uris: [],
  grant_types: ['client_credentials'],
  token_endpoint_auth_method: 'client_secret_basic',
})

/** A relying party configured by discovery from the issuer, as openid-client's README does it. */
function relyingParty (registered: RegisteredClient, auth: client.ClientAuth): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), registered.client_id, registered.client_secret ? { client_secret: registered.client_secret } : undefined, auth, insecure)
}

const basicRp = await relyingParty(basicClient, client.ClientSecretBasic(basicClient.client_secret))
const postRp = await relyingParty(postClient, client.ClientSecretPost(postClient.client_secret))
const publicRp = await relyingParty(publicClient, client.None())

/** A user who signs in through the hosted pages: signed up, address verified. */
async function newUser (label: string): Promise<Account & Credentials> {
  const account = await signup(app, { label })
  await markAddressVerified(app, account.access_token)
  return { ...account, password: PASSWORD }
}

interface SignedIn {
  tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
  claims: client.IDToken
  callback: URL
  signedIn: boolean
  consented: boolean
}

/**
 * The authorization code flow as an RP runs it: PKCE (S256), state and
 * nonce; the browser signs in and consents as the pages ask; openid-client
 * checks the authorization response and exchanges the code, validating the
 * ID token (signature, iss, aud, exp, iat, nonce).
 */
async function codeFlow (
  config: client.Configuration,
  agent: UserAgent,
  user: Credentials | null,
  parameters: Record<string, string> = {}
): Promise<SignedIn> {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...parameters,
  })
  const { callback, signedIn, consented } = await agent.authorize(url, user)
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
  return { tokens, claims: tokens.claims()!, callback, signedIn, consented }
}

/** The RFC 9068 validation a resource server runs, with oauth4webapi: signature by the JWKS, typ at+jwt, iss, aud, exp and the required claims. */
function validateAccessToken (config: client.Configuration, accessToken: string) {
  const request = new Request(`${AUDIENCE}/links`, { headers: { authorization: `Bearer ${accessToken}` } })
  return oauth.validateJwtAccessToken(config.serverMetadata(), request, AUDIENCE, { signingAlgorithms: ['ES256'], [oauth.allowInsecureRequests]: true })
}

/** OIDC Core §3.1.3.6: the base64url of the left half of the SHA-256 of the access token (the ID token is ES256). */
const atHash = (accessToken: string) => createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url')

function assertCallback (t: Test, callback: URL) {
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI, 'back at the registered redirect URI')
  t.equal(callback.searchParams.get('iss'), issuer, 'iss in the authorization response (RFC 9207)')
  t.match(callback.searchParams.get('code'), /^[A-Za-z0-9_-]{43,}$/, 'a code of at least 256 bits')
}

t.test('discovery: openid-client configures itself from the issuer', async (t) => {
  const metadata = basicRp.serverMetadata()
  t.equal(metadata.issuer, issuer)
  t.equal(metadata.authorization_endpoint, `${issuer}/oauth/authorize`)
  t.equal(metadata.token_endpoint, `${issuer}/auth/token`)
  t.equal(metadata.userinfo_endpoint, `${issuer}/oauth/userinfo`)
  t.equal(metadata.end_session_endpoint, `${issuer}/oauth/logout`)
  t.equal(metadata.jwks_uri, `${issuer}/.well-known/jwks.json`)
  t.equal(metadata.revocation_endpoint, `${issuer}/auth/revoke`)
  t.equal(metadata.introspection_endpoint, `${issuer}/auth/introspect`)
  t.same(metadata.response_types_supported, ['code'])
  t.same(metadata.code_challenge_methods_supported, ['S256'])
  t.ok(basicRp.serverMetadata().supportsPKCE(), 'openid-client sees S256 PKCE support')
  t.equal(metadata.authorization_response_iss_parameter_supported, true)
  for (const method of ['none', 'client_secret_basic', 'client_secret_post']) {
    t.ok(metadata.token_endpoint_auth_methods_supported?.includes(method), `token_endpoint_auth_methods_supported has ${method}`)
  }
  t.ok(metadata.id_token_signing_alg_values_supported?.includes('ES256'))
  for (const grant of ['authorization_code', 'refresh_token', 'client_credentials']) {
    t.ok(metadata.grant_types_supported?.includes(grant), `grant_types_supported has ${grant}`)
  }
  for (const scope of ['openid', 'email', 'offline_access']) {
    t.ok(metadata.scopes_supported?.includes(scope), `scopes_supported has ${scope}`)
  }

  // The RFC 8414 document names the same endpoints.
  const rfc8414 = await fetch(`${issuer}/.well-known/oauth-authorization-server`)
  t.equal(rfc8414.status, 200)
  const oauthMetadata = (await rfc8414.json()) as Record<string, unknown>
  for (const key of ['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'end_session_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint']) {
    t.equal(oauthMetadata[key], metadata[key], `RFC 8414 ${key}`)
  }
})

t.test('code + PKCE + state + nonce, confidential client with client_secret_basic', async (t) => {
  const user = await newUser('basic')
  const agent = new UserAgent(issuer)
  const { tokens, claims, callback, signedIn, consented } = await codeFlow(basicRp, agent, user)
  t.ok(signedIn, 'the sign-in page asked for the password')
  t.ok(consented, 'a third-party client asked for consent')
  assertCallback(t, callback)

  // The token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
  t.equal(tokens.token_type, 'bearer')
  t.ok(tokens.expires_in !== undefined && tokens.expires_in > 0)
  t.type(tokens.id_token, 'string')
  t.type(tokens.refresh_token, 'string', 'offline_access granted: a refresh token')
  t.same(tokens.scope?.split(' ').sort(), ['email', 'offline_access', 'openid'], 'the granted scope')

  // The ID token openid-client accepted (OIDC Core §2, §3.1.3.7).
  const header = decodeProtectedHeader(tokens.id_token!)
  t.equal(header.alg, 'ES256')
  t.type(header.kid, 'string')
  t.equal(claims.iss, issuer)
  t.equal(claims.sub, user.id)
  t.same([claims.aud].flat(), [basicClient.client_id])
  t.type(claims.nonce, 'string')
  t.type(claims.auth_time, 'number')
  t.ok(Math.abs(claims.auth_time! - Date.now() / 1000) < 60, 'auth_time: the sign-in just now')
  t.ok(Array.isArray(claims.amr) && claims.amr.includes('pwd'), 'amr names the password')
  t.type(claims.sid, 'string', 'sid: the browser session')
  t.equal(claims.at_hash, atHash(tokens.access_token), 'at_hash of the access token')
  t.equal(claims.email, user.email, 'email with the email scope')
  t.equal(claims.email_verified, true)

  // The access token is an RFC 9068 JWT for the configured audience.
  t.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt')
  const access = await validateAccessToken(basicRp, tokens.access_token)
  t.equal(access.iss, issuer)
  t.equal(access.aud, AUDIENCE)
  t.equal(access.sub, user.id)
  t.equal(access.client_id, basicClient.client_id)
  t.type(access.sid, 'string')
  t.same(String(access.scope).split(' ').sort(), ['email', 'offline_access', 'openid'])

  // UserInfo (OIDC Core §5.3), the subject checked by openid-client.
  const userinfo = await client.fetchUserInfo(basicRp, tokens.access_token, claims.sub)
  t.equal(userinfo.sub, user.id)
  t.equal(userinfo.email, user.email)
  t.equal(userinfo.email_verified, true)

  // The browser session gives SSO: the next authorization asks for nothing.
  const again = await codeFlow(basicRp, agent, null)
  t.notOk(again.signedIn, 'no second sign-in')
  t.notOk(again.consented, 'consent is remembered')
  t.equal(again.claims.sub, user.id)
  t.equal(again.claims.auth_time, claims.auth_time, 'auth_time is still the first sign-in')
  t.equal(again.claims.sid, claims.sid, 'same browser session')
})

t.test('a wrong client secret is invalid_client (RFC 6749 §5.2)', async (t) => {
  const user = await newUser('wrong-secret')
  const agent = new UserAgent(issuer)
  await codeFlow(basicRp, agent, user)
  const wrongRp = await relyingParty({ ...basicClient, client_secret: 'tacs_not-the-secret' }, client.ClientSecretBasic('tacs_not-the-secret'))
  const verifier = client.randomPKCECodeVerifier()
  const url = client.buildAuthorizationUrl(wrongRp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: 'wrong-secret',
  })
  const { callback } = await agent.authorize(url, null)
  const error = await client.authorizationCodeGrant(wrongRp, callback, { pkceCodeVerifier: verifier, expectedState: 'wrong-secret' }).catch((e: unknown) => e)
  // The client authenticated with the Authorization header: 401 with a WWW-Authenticate challenge, which openid-client surfaces as such.
  t.ok(error instanceof client.WWWAuthenticateChallengeError, `a challenge: ${String(error)}`)
  const challenge = error as client.WWWAuthenticateChallengeError
  t.equal(challenge.status, 401)
  t.equal(challenge.cause[0]?.scheme, 'basic', 'WWW-Authenticate: Basic')
  const body = (await challenge.response.json()) as { error?: string }
  t.equal(body.error, 'invalid_client')
})

t.test('code + PKCE, confidential client with client_secret_post', async (t) => {
  const user = await newUser('post')
  const { tokens, claims, callback } = await codeFlow(postRp, new UserAgent(issuer), user)
  assertCallback(t, callback)
  t.same([claims.aud].flat(), [postClient.client_id])
  t.equal(claims.sub, user.id)
  t.equal(claims.at_hash, atHash(tokens.access_token))
  const access = await validateAccessToken(postRp, tokens.access_token)
  t.equal(access.client_id, postClient.client_id)
  t.equal(access.sub, user.id)
  const userinfo = await client.fetchUserInfo(postRp, tokens.access_token, claims.sub)
  t.equal(userinfo.sub, user.id)
})

t.test('code + PKCE, public client (token_endpoint_auth_method none)', async (t) => {
  const user = await newUser('public')
  const { tokens, claims, callback } = await codeFlow(publicRp, new UserAgent(issuer), user)
  assertCallback(t, callback)
  t.same([claims.aud].flat(), [publicClient.client_id])
  t.equal(claims.sub, user.id)
  const access = await validateAccessToken(publicRp, tokens.access_token)
  t.equal(access.client_id, publicClient.client_id)
  t.type(tokens.refresh_token, 'string', 'offline_access granted: a refresh token')
  const userinfo = await client.fetchUserInfo(publicRp, tokens.access_token, claims.sub)
  t.equal(userinfo.sub, user.id)
})

t.test('refreshTokenGrant with offline_access: new tokens, the refresh token rotated', async (t) => {
  const user = await newUser('refresh')
  const { tokens, claims } = await codeFlow(basicRp, new UserAgent(issuer), user)
  const first = await validateAccessToken(basicRp, tokens.access_token)

  const refreshed = await client.refreshTokenGrant(basicRp, tokens.refresh_token!)
  t.type(refreshed.access_token, 'string')
  t.not(refreshed.access_token, tokens.access_token)
  t.type(refreshed.refresh_token, 'string')
  t.not(refreshed.refresh_token, tokens.refresh_token, 'rotated (DESIGN §3.5)')
  const access = await validateAccessToken(basicRp, refreshed.access_token)
  t.equal(access.sub, user.id)
  t.equal(access.client_id, basicClient.client_id)
  t.equal(access.sid, first.sid, 'the same session')
  t.same(String(access.scope).split(' ').sort(), String(first.scope).split(' ').sort(), 'the same scope')
  const refreshedClaims = refreshed.claims()
  if (refreshedClaims) {
    // OIDC Core §12.2: same iss, sub, aud and auth_time as the original.
    t.equal(refreshedClaims.sub, claims.sub)
    t.same(refreshedClaims.aud, claims.aud)
    t.equal(refreshedClaims.auth_time, claims.auth_time)
  }
  const userinfo = await client.fetchUserInfo(basicRp, refreshed.access_token, claims.sub)
  t.equal(userinfo.sub, user.id)

  // The just-retired token again, inside the grace window (DESIGN §3.5 rule 3): the same successor, nothing revoked.
  const retried = await client.refreshTokenGrant(basicRp, tokens.refresh_token!)
  t.equal(retried.refresh_token, refreshed.refresh_token, 'the same successor refresh token')
  t.equal((await validateAccessToken(basicRp, retried.access_token)).sid, first.sid, 'the same session')
})

t.test('a third-party client without offline_access gets no refresh token', async (t) => {
  const user = await newUser('no-offline')
  const { tokens, claims } = await codeFlow(basicRp, new UserAgent(issuer), user, { scope: 'openid' })
  t.equal(claims.sub, user.id)
  t.equal(tokens.refresh_token, undefined)
  t.equal(claims.email, undefined, 'no email claim without the email scope')
})

t.test('RP-initiated logout: buildEndSessionUrl with the id_token_hint of the current session', async (t) => {
  const user = await newUser('logout')
  const agent = new UserAgent(issuer)
  const { tokens } = await codeFlow(basicRp, agent, user)

  const endSession = client.buildEndSessionUrl(basicRp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT_URI, state: 'bye' })
  t.equal(`${endSession.origin}${endSession.pathname}`, `${issuer}/oauth/logout`)
  const stop = await agent.navigate(endSession)
  t.ok(stop.redirect, `redirected at once, no confirmation page: ${stop.page ? `${stop.page.status} ${textOf(stop.page).slice(0, 300)}` : ''}`)
  if (!stop.redirect) return
  t.equal(`${stop.redirect!.origin}${stop.redirect!.pathname}`, SIGNED_OUT_URI)
  t.equal(stop.redirect!.searchParams.get('state'), 'bye', 'state returned (RP-Initiated Logout §3)')

  // The browser session is over: prompt=none now needs a login.
  const verifier = client.randomPKCECodeVerifier()
  const silent = client.buildAuthorizationUrl(basicRp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    state: 'after-logout',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })
  const back = await agent.navigate(silent)
  t.ok(back.redirect, 'prompt=none answers by redirect')
  const error = await client.authorizationCodeGrant(basicRp, back.redirect!, { pkceCodeVerifier: verifier, expectedState: 'after-logout' }).catch((e: unknown) => e)
  t.ok(error instanceof client.AuthorizationResponseError, `an authorization error: ${String(error)}`)
  t.equal((error as client.AuthorizationResponseError).error, 'login_required')
})

t.test('RP-initiated logout without an id_token_hint asks for confirmation, then signs out', async (t) => {
  const user = await newUser('logout-confirm')
  const agent = new UserAgent(issuer)
  await codeFlow(basicRp, agent, user)

  const endSession = client.buildEndSessionUrl(basicRp, { post_logout_redirect_uri: SIGNED_OUT_URI, state: 'confirm' })
  const stop = await agent.navigate(endSession)
  t.ok(stop.page, 'a confirmation page')
  if (!stop.page) return
  t.equal(stop.page.status, 200)
  const form = formTo(stop.page, '/oauth/logout')
  t.ok(form, 'a form posting to /oauth/logout')
  if (!form) return
  const button = form.buttons.find((b) => b.text === 'Sign out')
  t.ok(button, 'a "Sign out" button')
  const after = await agent.submit(form, {}, button)
  t.ok(after.redirect, `redirected after signing out: ${after.page ? `${after.page.status} ${textOf(after.page).slice(0, 300)}` : ''}`)
  if (!after.redirect) return
  t.equal(`${after.redirect!.origin}${after.redirect!.pathname}`, SIGNED_OUT_URI)
  t.equal(after.redirect!.searchParams.get('state'), 'confirm')

  const silent = new URL(`${issuer}/oauth/authorize`)
  const verifier = client.randomPKCECodeVerifier()
  for (const [name, value] of Object.entries({
    response_type: 'code',
    client_id: basicClient.client_id,
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    state: 's',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })) silent.searchParams.set(name, value)
  const back = await agent.navigate(silent)
  t.equal(back.redirect?.searchParams.get('error'), 'login_required', 'the browser session ended')
})

t.test('clientCredentialsGrant for a confidential client registered for it', async (t) => {
  const serviceRp = await relyingParty(serviceClient, client.ClientSecretBasic(serviceClient.client_secret))
  const tokens = await client.clientCredentialsGrant(serviceRp)
  t.equal(tokens.token_type, 'bearer')
  t.ok(tokens.expires_in !== undefined && tokens.expires_in > 0)
  t.equal(tokens.refresh_token, undefined, 'no refresh token (RFC 6749 §4.4.3)')
  t.equal(tokens.id_token, undefined, 'no ID token')
  const access = await validateAccessToken(serviceRp, tokens.access_token)
  t.equal(access.sub, serviceClient.client_id, 'sub is the client itself (DESIGN §3.14)')
  t.equal(access.client_id, serviceClient.client_id)

  // A client not registered for the grant is refused (RFC 6749 §5.2 unauthorized_client).
  const refused = await client.clientCredentialsGrant(basicRp).catch((e: unknown) => e)
  t.ok(refused instanceof client.ResponseBodyError, `an OAuth error: ${String(refused)}`)
  t.equal((refused as client.ResponseBodyError).error, 'unauthorized_client')
})
