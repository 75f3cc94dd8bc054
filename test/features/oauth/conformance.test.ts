import { randomBytes, createHash } from 'node:crypto'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, importJWK, type JSONWebKeySet, type JWK } from 'jose'
import t, { type Test } from 'tap'
import { buildTestApp, json, listeningTestApp } from '../../helpers/app.js'
import { advance } from '../../helpers/totp.js'
import { injectAs, markAddressVerified, PASSWORD, signup, signupAdmin, uniqueEmail } from '../../helpers/users.js'
import { UserAgent, formTo, textOf, type Credentials, type Stop } from './user-agent.js'

/**
 * The OpenID Foundation conformance suite's certification plans for a
 * Basic OP (oidcc-basic-certification-test-plan) and a Config OP
 * (oidcc-config-certification-test-plan), module by module, against the
 * service listening on loopback: each subtest is named after the module it
 * stands for and asserts what that module asserts (its conditions, read from
 * openid-certification/conformance-suite), FAILURE-level conditions always,
 * WARNING-level ones unless CONFORMANCE.md records the warning as accepted.
 * The plans run with a static client (there is no registration endpoint),
 * discovery, response_type=code, the default response mode, and
 * client_secret_basic (client_secret_post for
 * oidcc-server-client-secret-post). CONFORMANCE.md lists every module of
 * both plans and why the others do not apply.
 *
 * One departure from the suite, by design: every authorization request here
 * carries PKCE (S256), which DESIGN §3.15 requires of every client, while the
 * suite sends a code_challenge only in
 * oidcc-ensure-request-with-valid-pkce-succeeds. The test
 * "PKCE is required" records what the unmodified suite would meet.
 */

const service = await listeningTestApp()
t.teardown(() => service.close())
const { app, issuer } = service

/** The suite's callback: its base URL + /callback (CreateRedirectUri). */
const BASE_URL = 'https://suite.example.test/test/a/token-auth'
const REDIRECT_URI = `${BASE_URL}/callback`

interface SuiteClient {
  id: string
  secret: string
  auth: 'client_secret_basic' | 'client_secret_post'
}

const admin = await signupAdmin(app)

async function registerClient (name: string, auth: SuiteClient['auth']): Promise<SuiteClient> {
  const response = await injectAs(app, admin.access_token, 'POST', '/admin/clients', {
    client_name: name,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: auth,
  })
  if (response.statusCode !== 201) throw new Error(`register ${name}: ${response.statusCode} ${response.body}`)
  const body = json<{ client_id: string; client_secret: string }>(response)
  return { id: body.client_id, secret: body.client_secret, auth }
}

/** config.client, config.client2 and config.client_secret_post of the suite's static-client configuration. */
const suiteClient = await registerClient('Conformance suite', 'client_secret_basic')
const suiteClient2 = await registerClient('Conformance suite, second client', 'client_secret_basic')
const suiteClientPost = await registerClient('Conformance suite, client_secret_post', 'client_secret_post')

/** The tester who signs in when the suite's browser reaches the login page. */
async function newUser (): Promise<Credentials & { id: string }> {
  const account = await signup(app, { email: uniqueEmail('buffy') })
  await markAddressVerified(app, account.access_token)
  return { id: account.id, email: account.email, password: PASSWORD }
}
const tester = await newUser()

// ---------------------------------------------------------------------------
// What the suite's conditions check, written from their descriptions.

type Json = Record<string, unknown>

async function getJson (url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers })
  const text = await response.text()
  let body: Json = {}
  try {
    body = JSON.parse(text) as Json
  } catch {}
  return { status: response.status, headers: response.headers, text, body }
}

const mimeType = (contentType: string | null | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase()

/** AbstractEnsureMinimumEntropy: Shannon entropy per character times the length. */
function shannonBits (value: string): number {
  const counts = new Map<string, number>()
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1)
  let perChar = 0
  for (const count of counts.values()) {
    const p = count / value.length
    perChar -= p * Math.log2(p)
  }
  return perChar * value.length
}

const VSCHAR = /^[\x20-\x7E]+$/
const ERROR_CODE_CHARS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/
/** RFC 6749 §4.1.2.1 error_description: tab, LF, CR and %x20-21 / %x23-5B / %x5D-7E. */
const ERROR_DESCRIPTION_CHARS = /^(?:[\t\n\r]|[\x20-\x21\x23-\x5B\x5D-\x7E])+$/
const ERROR_URI_CHARS = /^[\x21\x23-\x5B\x5D-\x7E]+$/

const nonEmptyString = (value: unknown) => typeof value === 'string' && value.trim() !== '' && value.trim().toLowerCase() !== 'null'
const isBoolean = (value: unknown) => typeof value === 'boolean'
const isNumber = (value: unknown) => typeof value === 'number' && Number.isFinite(value)
const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value)

/** OIDC Core §5.1's standard claims and the type each must have (AbstractValidateOpenIdStandardClaims). */
const STANDARD_CLAIMS: Record<string, (value: unknown) => boolean> = {
  sub: nonEmptyString,
  name: nonEmptyString,
  given_name: nonEmptyString,
  family_name: nonEmptyString,
  middle_name: nonEmptyString,
  nickname: nonEmptyString,
  preferred_username: nonEmptyString,
  profile: nonEmptyString,
  picture: nonEmptyString,
  website: nonEmptyString,
  email: nonEmptyString,
  email_verified: isBoolean,
  gender: nonEmptyString,
  birthdate: (value) => nonEmptyString(value) && /^(\d{4}-\d{2}-\d{2}|\d{4})$/.test(value as string),
  zoneinfo: nonEmptyString,
  locale: nonEmptyString,
  phone_number: nonEmptyString,
  phone_number_verified: isBoolean,
  address: (value) => isObject(value) && Object.values(value as Json).every(nonEmptyString),
  updated_at: isNumber,
  _claim_names: isObject,
  _claim_sources: isObject,
}

/** Claims of an ID token that are not about the user (ValidateIdTokenStandardClaims leaves them out). */
const ID_TOKEN_PROTOCOL_CLAIMS = ['iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'c_hash', 'at_hash', 's_hash', 'jti', 'nbf', 'verified_claims']

/** The claims each scope asks for (OIDC Core §5.4). */
const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at', 'preferred_username'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
  offline_access: [],
}

/** What an ID token may carry unasked (EnsureIdTokenDoesNotContainNonRequestedClaims). */
const ID_TOKEN_EXPECTED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'nbf', 'jti', 'sid', 's_hash', 'txn']

/** The standard claims of `claims` whose values have the wrong type (identity claims only; unknown claims are not judged). */
function invalidStandardClaims (claims: Json, leaveOut: string[] = []): string[] {
  return Object.entries(claims)
    .filter(([name]) => !leaveOut.includes(name))
    .filter(([name, value]) => STANDARD_CLAIMS[name] !== undefined && !STANDARD_CLAIMS[name]!(value))
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
}

/** AbstractUpdatedAtValid: when present, after 1990 and not in the future. */
function updatedAtValid (claims: Json): boolean {
  if (claims.updated_at === undefined) return true
  const at = claims.updated_at as number
  return isNumber(at) && at >= Date.UTC(1990, 0, 1) / 1000 && at <= Date.now() / 1000 + 300
}

// ---------------------------------------------------------------------------
// The module's configuration step (AbstractOIDCCServerTest.configure).

interface ServerConfiguration {
  metadata: Json
  jwks: JSONWebKeySet
}

/**
 * GetDynamicServerConfiguration, CheckServerConfiguration, FetchServerKeys,
 * CheckServerKeysIsValid, ValidateJwksSequence, CheckForKeyIdInServerJWKs,
 * CheckDistinctKeyIdValueInServerJWKs, and the client's authentication
 * method in token_endpoint_auth_methods_supported.
 */
async function configure (t: Test, client: SuiteClient = suiteClient): Promise<ServerConfiguration> {
  const discovery = await getJson(`${issuer}/.well-known/openid-configuration`)
  t.equal(discovery.status, 200, 'discovery document')
  const metadata = discovery.body
  for (const key of ['authorization_endpoint', 'token_endpoint', 'issuer']) {
    t.ok(nonEmptyString(metadata[key]) && URL.canParse(metadata[key] as string), `server configuration has ${key} as a URL`)
  }
  const keys = await getJson(metadata.jwks_uri as string)
  t.equal(keys.status, 200, 'the JWKS')
  const jwks = keys.body as unknown as JSONWebKeySet
  t.ok(Array.isArray(jwks.keys) && jwks.keys.length > 0, 'the JWKS has keys')
  const kids = new Set<string>()
  for (const key of jwks.keys) {
    t.ok(await importJWK(key as JWK).then(() => true, () => false), `key ${key.kid} parses as a JWK`)
    const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'].filter((member) => member in key)
    t.same(privateMembers, [], `key ${key.kid}: public key material only`)
    t.not(key.kty, 'oct', 'no symmetric keys')
    t.ok(nonEmptyString(key.kid), 'every key has a kid (OIDCC-10.1)')
    t.notOk(kids.has(key.kid!), `kid ${key.kid} is distinct (RFC 7517 §4.5)`)
    kids.add(key.kid!)
  }
  const methods = metadata.token_endpoint_auth_methods_supported as string[] | undefined
  if (methods !== undefined || client.auth !== 'client_secret_basic') {
    t.ok(methods?.includes(client.auth), `token_endpoint_auth_methods_supported has ${client.auth}`)
  }
  return { metadata, jwks }
}

// ---------------------------------------------------------------------------
// The suite as a client.

interface AuthorizationRequest {
  params: Record<string, string>
  state: string | null
  nonce: string | null
  verifier: string
}

/** The suite's random values: alphanumerics, and "-._~" at the end of longer ones (CreateRandomStateValue). */
function suiteRandom (length: number): string {
  const alphanumerics = randomBytes(length * 2).toString('base64').replace(/[^A-Za-z0-9]/g, '')
  return length > 10 ? `${alphanumerics.slice(0, length - 4)}-._~` : alphanumerics.slice(0, length)
}

/**
 * CreateAuthorizationRequestSteps: client_id, redirect_uri, scope, state,
 * nonce, response_type, and (the departure above) PKCE; `omit` leaves
 * parameters out, `extra` adds some.
 */
function authorizationRequest (
  client: SuiteClient,
  options: { scope?: string; stateLength?: number; nonceLength?: number; omit?: string[]; extra?: Record<string, string>; redirectUri?: string } = {}
): AuthorizationRequest {
  const verifier = randomBytes(32).toString('base64url')
  const state = suiteRandom(options.stateLength ?? 10)
  const nonce = suiteRandom(options.nonceLength ?? 10)
  const params: Record<string, string> = {
    client_id: client.id,
    redirect_uri: options.redirectUri ?? REDIRECT_URI,
    scope: options.scope ?? 'openid',
    state,
    nonce,
    response_type: 'code',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...options.extra,
  }
  for (const name of options.omit ?? []) delete params[name]
  return { params, state: params.state ?? null, nonce: params.nonce ?? null, verifier }
}

/** BuildPlainRedirectToAuthorizationEndpoint; `reverse` orders the parameters backwards (…ReorderedParams). */
function authorizationUrl (metadata: Json, params: Record<string, string>, order: 'as-built' | 'reverse' = 'as-built'): URL {
  const url = new URL(metadata.authorization_endpoint as string)
  const entries = Object.entries(params)
  for (const [name, value] of order === 'reverse' ? entries.reverse() : entries) url.searchParams.append(name, value)
  return url
}

/** CallTokenEndpointAndReturnFullResponse with the client's authentication (AddBasicAuthClientSecretToRequest or AddFormBasedClientSecretToRequest). */
async function tokenRequest (metadata: Json, client: SuiteClient, form: Record<string, string>) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }
  const body = new URLSearchParams(form)
  if (client.auth === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`
  } else {
    body.set('client_id', client.id)
    body.set('client_secret', client.secret)
  }
  const response = await fetch(metadata.token_endpoint as string, { method: 'POST', headers, body })
  const text = await response.text()
  let parsed: Json = {}
  try {
    parsed = JSON.parse(text) as Json
  } catch {}
  return { status: response.status, headers: response.headers, text, body: parsed }
}

interface IdToken {
  raw: string
  header: Json
  claims: Json
}

function parseIdToken (raw: string): IdToken {
  return { raw, header: decodeProtectedHeader(raw) as Json, claims: JSON.parse(Buffer.from(raw.split('.')[1]!, 'base64url').toString('utf8')) as Json }
}

/**
 * PerformStandardIdTokenChecks: ValidateIdToken, ValidateIdTokenStandardClaims,
 * ValidateIdTokenNonce, ValidateIdTokenACRClaimAgainstRequest,
 * ValidateIdTokenSignature, CheckForSubjectInIdToken, EnsureIdTokenUpdatedAtValid.
 */
async function standardIdTokenChecks (t: Test, idToken: IdToken, configuration: ServerConfiguration, client: SuiteClient, request: AuthorizationRequest) {
  const { claims } = idToken
  const now = Date.now() / 1000
  const skew = 300
  t.equal(claims.iss, configuration.metadata.issuer, 'iss is the issuer')
  t.ok(Array.isArray(claims.aud) ? claims.aud.includes(client.id) : claims.aud === client.id, 'aud names the client')
  t.ok(isNumber(claims.exp), 'exp is a number')
  t.ok((claims.exp as number) > now - skew, 'not expired')
  t.ok((claims.exp as number) < now + 50 * 365 * 86400, 'exp in seconds, not milliseconds')
  t.ok(isNumber(claims.iat), 'iat is a number')
  t.ok((claims.iat as number) <= now + skew && (claims.iat as number) >= now - skew, 'iat is now, within the suite\'s five minutes')
  if (claims.auth_time !== undefined) {
    t.ok(isNumber(claims.auth_time), 'auth_time is a number')
    t.ok((claims.auth_time as number) <= now + skew && (claims.auth_time as number) > now - 365 * 86400, 'auth_time is within the last year, not in the future')
  }
  if (claims.acr !== undefined) t.ok(nonEmptyString(claims.acr), 'acr, when present, is a non-empty string')
  const identity = Object.fromEntries(Object.entries(claims).filter(([name]) => !ID_TOKEN_PROTOCOL_CLAIMS.includes(name)))
  t.ok(Object.keys(identity).length > 0, 'identity claims present')
  t.same(invalidStandardClaims(identity), [], 'standard claims have their types (OIDC Core §5.1)')
  if (request.nonce === null) t.equal(claims.nonce, undefined, 'no nonce sent, none returned')
  else t.equal(claims.nonce, request.nonce, 'nonce returned as sent (OIDC Core §2)')
  const verified = await compactVerify(idToken.raw, createLocalJWKSet(configuration.jwks)).then(() => true, () => false)
  t.ok(verified, 'the signature verifies with a key of the JWKS')
  t.ok(nonEmptyString(claims.sub) && (claims.sub as string).length <= 255 && /^[\x20-\x7E]+$/.test(claims.sub as string), 'sub: printable ASCII, at most 255 characters')
  t.ok(updatedAtValid(claims), 'updated_at, when present, is a valid time')
}

/** OIDC Core §3.1.3.6 / §3.3.2.11: the left half of the hash matching the signature algorithm, base64url. */
function halfHash (alg: string, value: string): string {
  const bits = /(256|384|512)$/.exec(alg)?.[1] ?? '256'
  const digest = createHash(`sha${bits}`).update(value, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

/**
 * onAuthorizationCallbackResponse for a successful code response:
 * CheckMatchingCallbackParameters, ValidateIssIfPresentInAuthorizationResponse,
 * CheckIfAuthorizationEndpointError, CheckStateInAuthorizationResponse,
 * ExtractAuthorizationCodeFromAuthorizationResponse, and oidcc-server's
 * EnsureMinimumAuthorizationCodeLength and …Entropy.
 */
function successCallbackChecks (t: Test, callback: URL, request: AuthorizationRequest, metadata: Json): string {
  const redirectUri = new URL(request.params.redirect_uri!)
  t.equal(`${callback.origin}${callback.pathname}`, `${redirectUri.origin}${redirectUri.pathname}`, 'back at the redirect URI')
  for (const [name, value] of redirectUri.searchParams) t.equal(callback.searchParams.get(name), value, `the redirect URI's ${name} kept (RFC 6749 §3.1.2)`)
  const iss = callback.searchParams.get('iss')
  if (iss !== null) t.equal(iss, metadata.issuer, 'iss is the issuer (RFC 9207)')
  t.equal(callback.searchParams.get('error'), null, `no error: ${callback.searchParams.get('error_description') ?? ''}`)
  t.equal(callback.searchParams.get('state'), request.state, 'state returned unchanged')
  const code = callback.searchParams.get('code') ?? ''
  t.ok(code.length > 0, 'a code')
  t.ok(Buffer.byteLength(code) * 8 >= 128, 'the code has at least 128 bits (RFC 6749 §10.10)')
  t.ok(shannonBits(code) > 96, 'the code looks random enough (RFC 6819 §5.1.4.2.2)')
  return code
}

/**
 * performGenericAuthorizationEndpointErrorResponseValidation: state, iss,
 * an error and no code, only the parameters of an error response, and the
 * characters RFC 6749 §4.1.2.1 allows.
 */
function errorCallbackChecks (t: Test, callback: URL, request: AuthorizationRequest, metadata: Json): string | null {
  t.equal(callback.searchParams.get('state'), request.state, 'state returned unchanged')
  const iss = callback.searchParams.get('iss')
  if (iss !== null) t.equal(iss, metadata.issuer, 'iss is the issuer (RFC 9207)')
  const error = callback.searchParams.get('error')
  t.ok(error, 'an error')
  t.equal(callback.searchParams.get('code'), null, 'no code')
  const expected = new Set(['error', 'error_description', 'error_uri', 'state', 'session_state', 'iss', ...new URL(request.params.redirect_uri ?? REDIRECT_URI).searchParams.keys()])
  t.same([...callback.searchParams.keys()].filter((name) => !expected.has(name)), [], 'only the parameters of an error response')
  const description = callback.searchParams.get('error_description')
  if (description !== null) t.match(description, ERROR_DESCRIPTION_CHARS, 'error_description uses the allowed characters')
  const errorUri = callback.searchParams.get('error_uri')
  if (errorUri !== null) t.ok(ERROR_URI_CHARS.test(errorUri) && URL.canParse(errorUri), 'error_uri is a URI of the allowed characters')
  return error
}

interface Tokens {
  access_token: string
  token_type: string
  expires_in?: number
  refresh_token?: string
  id_token: string
  scope?: string
}

/**
 * requestAuthorizationCode: the token endpoint's 200, no error, an access
 * token, expires_in valid when present, an ID token (OIDC Core §3.1.3.3)
 * passing the standard checks; oidcc-server's at_hash and c_hash, when
 * present, correct.
 */
async function exchangeCode (t: Test, configuration: ServerConfiguration, client: SuiteClient, code: string, request: AuthorizationRequest): Promise<{ tokens: Tokens; idToken: IdToken }> {
  const response = await tokenRequest(configuration.metadata, client, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: request.params.redirect_uri!,
    code_verifier: request.verifier,
  })
  t.equal(response.status, 200, `token endpoint 200: ${response.status === 200 ? '' : response.text}`)
  t.equal(mimeType(response.headers.get('content-type')), 'application/json')
  t.ok((response.headers.get('cache-control') ?? '').split(',').map((part) => part.trim()).includes('no-store'), 'Cache-Control: no-store')
  t.equal(response.body.error, undefined, 'no error')
  const tokens = response.body as unknown as Tokens
  t.ok(nonEmptyString(tokens.access_token), 'an access token')
  t.equal(String(tokens.token_type).toLowerCase(), 'bearer')
  t.ok(tokens.expires_in !== undefined, 'expires_in (RFC 6749 §5.1 recommends it)')
  if (tokens.expires_in !== undefined) t.ok(isNumber(tokens.expires_in) && tokens.expires_in > 0 && tokens.expires_in <= 31_536_000, 'expires_in is positive seconds')
  t.ok(nonEmptyString(tokens.id_token), 'an ID token (OIDC Core §3.1.3.3)')
  const idToken = parseIdToken(tokens.id_token)
  await standardIdTokenChecks(t, idToken, configuration, client, request)
  if (idToken.claims.at_hash !== undefined) t.equal(idToken.claims.at_hash, halfHash(String(idToken.header.alg), tokens.access_token), 'at_hash matches the access token')
  if (idToken.claims.c_hash !== undefined) t.equal(idToken.claims.c_hash, halfHash(String(idToken.header.alg), code), 'c_hash matches the code')
  t.equal(idToken.claims.name, undefined, 'no name in the ID token (EnsureIdTokenDoesNotContainName)')
  return { tokens, idToken }
}

/** CallUserInfoEndpoint (GET, header), …PostHeader, …WithBearerTokenInBody. */
async function callUserInfo (metadata: Json, accessToken: string, method: 'get' | 'post-header' | 'post-body') {
  const endpoint = metadata.userinfo_endpoint as string
  const init: RequestInit =
    method === 'get'
      ? { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } }
      : method === 'post-header'
        ? { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } }
        : { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams({ access_token: accessToken }) }
  const response = await fetch(endpoint, init)
  const text = await response.text()
  let body: Json = {}
  try {
    body = JSON.parse(text) as Json
  } catch {}
  return { status: response.status, headers: response.headers, text, body }
}

/**
 * validateExtractedUserInfoResponse: JSON, the standard claims' types, sub,
 * updated_at, and the sub of the token endpoint's ID token.
 */
function userInfoChecks (t: Test, response: Awaited<ReturnType<typeof callUserInfo>>, idToken: IdToken) {
  t.equal(response.status, 200, `userinfo 200: ${response.status === 200 ? '' : response.text}`)
  t.equal(mimeType(response.headers.get('content-type')), 'application/json', 'a JSON answer (OIDC Core §5.3.2)')
  t.same(invalidStandardClaims(response.body), [], 'standard claims have their types')
  t.ok(nonEmptyString(response.body.sub), 'sub')
  t.ok(updatedAtValid(response.body), 'updated_at, when present, is a valid time')
  t.equal(response.body.sub, idToken.claims.sub, 'the sub of the ID token (OIDC Core §5.3.2)')
}

interface Flow {
  configuration: ServerConfiguration
  request: AuthorizationRequest
  callback: URL
  signedIn: boolean
  consented: boolean
  tokens: Tokens
  idToken: IdToken
}

/**
 * One pass of AbstractOIDCCServerTest for response_type=code: configure,
 * the authorization request in the browser, the callback's checks, the code
 * exchanged and its ID token checked, and the protected resource (UserInfo)
 * called with the access token.
 */
async function codeFlow (
  t: Test,
  options: {
    client?: SuiteClient
    agent?: UserAgent
    user?: Credentials | null
    request?: Parameters<typeof authorizationRequest>[1]
    order?: 'as-built' | 'reverse'
  } = {}
): Promise<Flow> {
  const client = options.client ?? suiteClient
  const configuration = await configure(t, client)
  const request = authorizationRequest(client, options.request)
  const agent = options.agent ?? new UserAgent(issuer)
  const { callback, signedIn, consented } = await agent.authorize(authorizationUrl(configuration.metadata, request.params, options.order), options.user === undefined ? tester : options.user)
  const code = successCallbackChecks(t, callback, request, configuration.metadata)
  const { tokens, idToken } = await exchangeCode(t, configuration, client, code, request)
  const resource = await callUserInfo(configuration.metadata, tokens.access_token, 'get')
  t.equal(resource.status, 200, 'the protected resource (UserInfo) accepts the access token')
  return { configuration, request, callback, signedIn, consented, tokens, idToken }
}

/** EnsureIdTokenDoesNotContainNonRequestedClaims: only the ID token's own claims and those of the requested scopes. */
function nonRequestedClaims (idToken: IdToken, scope: string): string[] {
  const allowed = new Set([...ID_TOKEN_EXPECTED_CLAIMS, ...scope.split(' ').flatMap((s) => SCOPE_CLAIMS[s] ?? [])])
  return Object.keys(idToken.claims).filter((name) => !allowed.has(name))
}

// ---------------------------------------------------------------------------
// oidcc-basic-certification-test-plan

t.test('oidcc-server', async (t) => {
  const flow = await codeFlow(t)
  t.same(nonRequestedClaims(flow.idToken, flow.request.params.scope!), [], 'no claims beyond those asked for (EnsureIdTokenDoesNotContainNonRequestedClaims)')
})

t.test('oidcc-response-type-missing', async (t) => {
  const { metadata } = await configure(t)
  const request = authorizationRequest(suiteClient, { omit: ['response_type'] })
  const stop = await new UserAgent(issuer).navigate(authorizationUrl(metadata, request.params))
  if (stop.redirect) {
    // Redirected back: an error the client understands (RFC 6749 §4.1.2.1).
    t.equal(`${stop.redirect.origin}${stop.redirect.pathname}`, REDIRECT_URI, 'back at the redirect URI')
    const error = errorCallbackChecks(t, stop.redirect, request, metadata)
    t.ok(error === 'invalid_request' || error === 'unsupported_response_type', `invalid_request or unsupported_response_type, not ${error}`)
  } else {
    // Or an error page saying the response type is missing (the suite's screenshot).
    t.equal(stop.page.status, 400, 'an error page')
    t.match(textOf(stop.page), /response_type/, 'naming the missing response_type')
    t.notOk(formTo(stop.page, '/oauth/sign-in'), 'not a sign-in page')
  }
})

t.test('oidcc-userinfo-get', async (t) => {
  const flow = await codeFlow(t)
  userInfoChecks(t, await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get'), flow.idToken)
})

t.test('oidcc-userinfo-post-header', async (t) => {
  const flow = await codeFlow(t)
  userInfoChecks(t, await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'post-header'), flow.idToken)
})

t.test('oidcc-userinfo-post-body', async (t) => {
  // The body form (RFC 6750 §2.2) is optional: an HTTP error ends the module with a warning, a success is validated.
  const flow = await codeFlow(t)
  const response = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'post-body')
  if (response.status >= 200 && response.status < 300) {
    userInfoChecks(t, response, flow.idToken)
  } else {
    t.ok(response.status >= 400 && response.status < 500, `refused as a client error, not ${response.status}`)
    t.comment(`suite warning (accepted): the access token in the body is not supported (${response.status})`)
  }
})

t.test('oidcc-ensure-request-without-nonce-succeeds-for-code-flow', async (t) => {
  const flow = await codeFlow(t, { request: { omit: ['nonce'] } })
  t.equal(flow.idToken.claims.nonce, undefined, 'and the ID token carries no nonce')
})

t.test('oidcc-scope-profile', async (t) => {
  const flow = await codeFlow(t, { request: { scope: 'openid profile' } })
  t.ok((flow.configuration.metadata.scopes_supported as string[]).includes('profile'), 'scopes_supported lists profile, so the suite runs the module')
  const userinfo = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get')
  userInfoChecks(t, userinfo, flow.idToken)
  const missing = SCOPE_CLAIMS.profile!.filter((claim) => !(claim in userinfo.body))
  if (missing.length > 0) t.comment(`suite warning (accepted, CONFORMANCE.md): the profile claims ${missing.join(', ')} are not held, so not returned`)
})

t.test('oidcc-scope-email', async (t) => {
  const flow = await codeFlow(t, { request: { scope: 'openid email' } })
  t.ok((flow.configuration.metadata.scopes_supported as string[]).includes('email'), 'scopes_supported lists email, so the suite runs the module')
  const userinfo = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get')
  userInfoChecks(t, userinfo, flow.idToken)
  t.equal(userinfo.body.email, tester.email, 'email in the UserInfo response (OIDC Core §5.4)')
  t.equal(userinfo.body.email_verified, true, 'email_verified in the UserInfo response')
  t.equal(userinfo.body.name, undefined, 'no name in the UserInfo response (EnsureUserInfoDoesNotContainName)')
  if (flow.idToken.claims.email !== undefined) t.comment('suite warning (accepted, DESIGN §3.15): the ID token also carries email')
})

t.test('oidcc-alternate-happy-flow', async (t) => {
  // The scope's values reversed and the query parameters in another order (RFC 6749 §3.3).
  const flow = await codeFlow(t, { request: { scope: 'email openid' }, order: 'reverse' })
  const userinfo = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get')
  userInfoChecks(t, userinfo, flow.idToken)
  t.equal(userinfo.body.email, tester.email, 'email in the UserInfo response')
  t.equal(userinfo.body.email_verified, true)
  t.equal(userinfo.body.name, undefined, 'no name in the UserInfo response')
})

t.test('oidcc-display-page', async (t) => {
  const flow = await codeFlow(t, { request: { extra: { display: 'page' } } })
  t.ok(flow.signedIn, 'the normal sign-in page was shown (OIDC Core §3.1.2.1 display, §15.1)')
})

t.test('oidcc-display-popup', async (t) => {
  const flow = await codeFlow(t, { request: { extra: { display: 'popup' } } })
  t.ok(flow.signedIn, 'a sign-in page was shown')
})

t.test('oidcc-prompt-login', async (t) => {
  const agent = new UserAgent(issuer)
  const first = await codeFlow(t, { agent })
  t.ok(first.signedIn)
  // WaitForOneSecond, so that auth_time must differ.
  await advance(service, 2)
  const second = await codeFlow(t, { agent, request: { extra: { prompt: 'login' } } })
  t.ok(second.signedIn, 'prompt=login asked for the password again (ExpectSecondLoginPage)')
  const firstAuthTime = first.idToken.claims.auth_time as number | undefined
  const secondAuthTime = second.idToken.claims.auth_time as number | undefined
  if (firstAuthTime !== undefined && secondAuthTime !== undefined) {
    t.ok(secondAuthTime > firstAuthTime, 'auth_time of the second sign-in is later (OIDC Core §2)')
  }
})

t.test('oidcc-prompt-none-not-logged-in', async (t) => {
  const { metadata } = await configure(t)
  const request = authorizationRequest(suiteClient, { stateLength: 128, extra: { prompt: 'none' } })
  const stop = await new UserAgent(issuer).navigate(authorizationUrl(metadata, request.params))
  t.ok(stop.redirect, `prompt=none answers by redirect, never a page: ${stop.page ? textOf(stop.page).slice(0, 200) : ''}`)
  if (!stop.redirect) return
  t.equal(`${stop.redirect.origin}${stop.redirect.pathname}`, REDIRECT_URI)
  const error = errorCallbackChecks(t, stop.redirect, request, metadata)
  t.ok(['interaction_required', 'login_required', 'account_selection_required', 'consent_required'].includes(error ?? ''), `an error that needs the user (OIDC Core §3.1.2.6), not ${error}`)
  t.equal(stop.redirect.searchParams.get('state')?.length, 128, 'the 128-character state intact')
})

t.test('oidcc-prompt-none-logged-in', async (t) => {
  const agent = new UserAgent(issuer)
  const first = await codeFlow(t, { agent })
  const second = await codeFlow(t, { agent, user: null, request: { extra: { prompt: 'none' } } })
  t.notOk(second.signedIn, 'no sign-in asked')
  t.equal(second.idToken.claims.sub, first.idToken.claims.sub, 'same sub')
  if (first.idToken.claims.auth_time !== undefined && second.idToken.claims.auth_time !== undefined) {
    t.equal(second.idToken.claims.auth_time, first.idToken.claims.auth_time, 'same auth_time')
  }
})

t.test('oidcc-max-age-1', async (t) => {
  const agent = new UserAgent(issuer)
  const first = await codeFlow(t, { agent })
  // WaitFor2Seconds: the first authentication is then older than max_age=1.
  await advance(service, 2)
  const second = await codeFlow(t, { agent, request: { extra: { max_age: '1' } } })
  t.ok(second.signedIn, 'max_age=1 asked for the password again (ExpectSecondLoginPage)')
  const authTime = second.idToken.claims.auth_time as number | undefined
  t.type(authTime, 'number', 'auth_time present, as max_age was sent (OIDC Core §2, §3.1.2.1)')
  const firstAuthTime = first.idToken.claims.auth_time as number | undefined
  if (firstAuthTime !== undefined && authTime !== undefined) t.ok(authTime > firstAuthTime, 'later than the first')
  if (authTime !== undefined) t.ok(authTime >= Date.now() / 1000 - 301, 'recent')
})

t.test('oidcc-max-age-10000', async (t) => {
  const agent = new UserAgent(issuer)
  const first = await codeFlow(t, { agent, request: { extra: { max_age: '15000' } } })
  t.type(first.idToken.claims.auth_time, 'number', 'auth_time present in the first ID token (max_age=15000)')
  const second = await codeFlow(t, { agent, user: null, request: { extra: { max_age: '10000' } } })
  t.notOk(second.signedIn, 'no sign-in asked')
  t.type(second.idToken.claims.auth_time, 'number', 'auth_time present in the second ID token')
  t.equal(second.idToken.claims.auth_time, first.idToken.claims.auth_time, 'same auth_time')
  t.equal(second.idToken.claims.sub, first.idToken.claims.sub, 'same sub')
})

t.test('oidcc-ensure-request-with-unknown-parameter-succeeds', async (t) => {
  await codeFlow(t, { request: { extra: { extra: 'foobar' } } })
})

t.test('oidcc-id-token-hint', async (t) => {
  const agent = new UserAgent(issuer)
  const first = await codeFlow(t, { agent })
  const second = await codeFlow(t, { agent, user: null, request: { extra: { prompt: 'none', id_token_hint: first.tokens.id_token } } })
  t.notOk(second.signedIn, 'no sign-in asked')
  t.equal(second.idToken.claims.sub, first.idToken.claims.sub, 'same sub')
  if (first.idToken.claims.auth_time !== undefined && second.idToken.claims.auth_time !== undefined) {
    t.equal(second.idToken.claims.auth_time, first.idToken.claims.auth_time, 'same auth_time')
  }
})

t.test('oidcc-login-hint', async (t) => {
  const flow = await codeFlow(t, { request: { extra: { login_hint: `buffy@${new URL(issuer).hostname}` } } })
  t.ok(flow.signedIn, 'a fresh sign-in page, and no error')
})

t.test('oidcc-ui-locales', async (t) => {
  const flow = await codeFlow(t, { request: { extra: { ui_locales: 'se' } } })
  t.ok(flow.signedIn)
})

t.test('oidcc-claims-locales', async (t) => {
  await codeFlow(t, { request: { extra: { claims_locales: 'se' } } })
})

t.test('oidcc-ensure-request-with-acr-values-succeeds', async (t) => {
  const { metadata } = await configure(t)
  const supported = metadata.acr_values_supported as string[] | undefined
  const acrValues = supported && supported.length > 0 ? supported.join(' ') : '1 2'
  const flow = await codeFlow(t, { request: { extra: { acr_values: acrValues } } })
  const acr = flow.idToken.claims.acr
  if (acr === undefined) {
    t.comment('suite warning (accepted, DESIGN §3.12): a password sign-in meets no level, so no acr is returned')
  } else {
    t.ok(acrValues.split(' ').includes(acr as string), `acr ${String(acr)} is one of the requested values`)
  }
})

/** AbstractOIDCCAuthCodeReuse.checkResponse: 400, JSON, invalid_grant, and the allowed characters. */
function codeReuseChecks (t: Test, response: Awaited<ReturnType<typeof tokenRequest>>) {
  t.equal(response.status, 400, 'a second use is refused with 400 (OIDC Core §3.1.3.4)')
  t.equal(mimeType(response.headers.get('content-type')), 'application/json')
  t.equal(response.body.error, 'invalid_grant', 'invalid_grant (RFC 6749 §5.2)')
  t.match(String(response.body.error), ERROR_CODE_CHARS)
  if (response.body.error_description !== undefined) t.match(String(response.body.error_description), ERROR_DESCRIPTION_CHARS)
  if (response.body.error_uri !== undefined) t.match(String(response.body.error_uri), ERROR_URI_CHARS)
}

function reuseCode (flow: Flow, client: SuiteClient = suiteClient) {
  return tokenRequest(flow.configuration.metadata, client, {
    grant_type: 'authorization_code',
    code: flow.callback.searchParams.get('code')!,
    redirect_uri: flow.request.params.redirect_uri!,
    code_verifier: flow.request.verifier,
  })
}

t.test('oidcc-codereuse', async (t) => {
  const flow = await codeFlow(t)
  codeReuseChecks(t, await reuseCode(flow))
})

t.test('oidcc-codereuse-30seconds', async (t) => {
  const flow = await codeFlow(t)
  await advance(service, 30)
  codeReuseChecks(t, await reuseCode(flow))
  // The tokens the code gave should be revoked (RFC 6749 §4.1.2); the service revokes their session (DESIGN §3.15).
  await service.app.revocations.sync()
  const resource = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get')
  t.ok(resource.status >= 400 && resource.status < 500, `the first access token no longer works (${resource.status})`)
})

t.test('oidcc-ensure-registered-redirect-uri', async (t) => {
  const { metadata } = await configure(t)
  // CreateBadRedirectUriByAppending: a random path under the callback, never registered.
  const request = authorizationRequest(suiteClient, { redirectUri: `${REDIRECT_URI}/${suiteRandom(10)}` })
  const stop = await new UserAgent(issuer).navigate(authorizationUrl(metadata, request.params))
  t.notOk(stop.redirect, `no redirect, to either URI: ${stop.redirect?.href ?? ''}`)
  if (stop.page) {
    t.equal(stop.page.status, 400, 'an error page (OIDC Core §3.1.2.1)')
    t.match(textOf(stop.page), /redirect/i, 'saying the redirect URI is invalid')
    t.notOk(formTo(stop.page, '/oauth/sign-in'), 'not a sign-in page')
  }
})

t.test('oidcc-ensure-post-request-succeeds', async (t) => {
  // OIDC Core §3.1.2.1: the authorization endpoint MUST support POST (form-encoded parameters).
  const configuration = await configure(t)
  const request = authorizationRequest(suiteClient)
  const agent = new UserAgent(issuer)
  let stop: Stop = await agent.navigate(configuration.metadata.authorization_endpoint as string, { form: request.params, headers: { origin: new URL(BASE_URL).origin } })
  if (stop.page) {
    const signIn = formTo(stop.page, '/oauth/sign-in')
    t.ok(signIn, `the POSTed request reaches the sign-in page: ${stop.page.status} ${textOf(stop.page).slice(0, 200)}`)
    if (!signIn) return
    stop = await agent.submit(signIn, { email: tester.email, password: tester.password })
  }
  t.ok(stop.redirect, 'the redirect URI is called')
  if (!stop.redirect) return
  const code = successCallbackChecks(t, stop.redirect, request, configuration.metadata)
  await exchangeCode(t, configuration, suiteClient, code, request)
})

t.test('oidcc-server-client-secret-post', async (t) => {
  const flow = await codeFlow(t, { client: suiteClientPost })
  t.same(nonRequestedClaims(flow.idToken, flow.request.params.scope!), [], 'no claims beyond those asked for')
})

/** An unsigned request object (alg none), as SerializeRequestObjectWithNullAlgorithm makes it. */
function unsignedRequestObject (claims: Record<string, string>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none' })}.${part(claims)}.`
}

/** BuildRequestObjectByValueRedirectToAuthorizationEndpoint: `request`, and the OAuth parameters OIDC Core §6.1 repeats outside. */
function requestObjectUrl (metadata: Json, request: AuthorizationRequest, outer: Record<string, string>): URL {
  const url = new URL(metadata.authorization_endpoint as string)
  url.searchParams.set('request', unsignedRequestObject(request.params))
  for (const name of ['response_type', 'client_id', 'scope', 'redirect_uri']) url.searchParams.set(name, outer[name] ?? request.params[name]!)
  return url
}

t.test('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported', async (t) => {
  const configuration = await configure(t)
  const { metadata } = configuration
  const algs = metadata.request_object_signing_alg_values_supported as string[] | undefined
  if (algs !== undefined && !algs.includes('none')) {
    t.pass('request_object_signing_alg_values_supported lacks none: the suite skips the module')
    return
  }
  const request = authorizationRequest(suiteClient)
  const agent = new UserAgent(issuer)
  const stop = await agent.navigate(requestObjectUrl(metadata, request, {}))
  let callback = stop.redirect
  if (!callback && stop.page && formTo(stop.page, '/oauth/sign-in')) {
    callback = (await agent.authorize(stop.page.url, tester)).callback
  }
  t.ok(callback, `redirected back: ${stop.page ? `${stop.page.status} ${textOf(stop.page).slice(0, 200)}` : ''}`)
  if (!callback) return
  t.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI)
  const error = callback.searchParams.get('error')
  if (error !== null) {
    // OIDC Core §3.1.2.6, §6: an OP without request objects says request_not_supported (the suite then skips).
    t.equal(error, 'request_not_supported', `request_not_supported, not ${error}: ${callback.searchParams.get('error_description') ?? ''}`)
    const iss = callback.searchParams.get('iss')
    if (iss !== null) t.equal(iss, issuer)
    t.equal(callback.searchParams.get('code'), null, 'no code')
  } else {
    // Or the request object is processed: its state comes back and its nonce is in the ID token.
    const code = successCallbackChecks(t, callback, request, metadata)
    await exchangeCode(t, configuration, suiteClient, code, request)
  }
})

t.test('oidcc-claims-essential', async (t) => {
  // The claims parameter (OIDC Core §5.5) is not supported (claims_parameter_supported false): it must be ignored, not fail.
  const flow = await codeFlow(t, { request: { extra: { claims: JSON.stringify({ userinfo: { name: { essential: true } } }) } } })
  const userinfo = await callUserInfo(flow.configuration.metadata, flow.tokens.access_token, 'get')
  userInfoChecks(t, userinfo, flow.idToken)
  if (userinfo.body.name === undefined) t.comment('suite warning (accepted, CONFORMANCE.md): no name claim is held, so none is returned')
  t.equal(flow.idToken.claims.name, undefined, 'no name in the ID token')
})

t.test('oidcc-ensure-request-object-with-redirect-uri', async (t) => {
  const { metadata } = await configure(t)
  const algs = metadata.request_object_signing_alg_values_supported as string[] | undefined
  if (algs !== undefined && !algs.includes('none')) {
    t.pass('request_object_signing_alg_values_supported lacks none: the suite skips the module')
    return
  }
  // The request object holds the registered redirect URI; the plain parameter an unregistered one (AddInvalidRedirectUriToAuthorizationRequest).
  const request = authorizationRequest(suiteClient)
  const invalidRedirect = `${REDIRECT_URI}_invalid`
  const stop = await new UserAgent(issuer).navigate(requestObjectUrl(metadata, request, { redirect_uri: invalidRedirect }))
  if (stop.page) {
    // An OP that ignores the request object sees an unregistered redirect URI: an error page, never a redirect.
    t.equal(stop.page.status, 400, 'an invalid redirect_uri error page (RFC 6749 §3.1.2.4)')
    t.match(textOf(stop.page), /redirect/i, 'saying the redirect URI is invalid')
  } else {
    // An OP that processes it uses the request object's redirect URI (OIDC Core §6.1), and succeeds.
    t.not(`${stop.redirect.origin}${stop.redirect.pathname}`, invalidRedirect, 'never to the unregistered URI')
    t.equal(stop.redirect.searchParams.get('error'), null, 'not an error sent to the registered URI in place of the invalid one (EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri)')
  }
})

/**
 * RefreshTokenRequestSteps: the refresh grant (with the client's scope for
 * the first client), a second later; 200, JSON, no-store; a bearer access
 * token of allowed characters and entropy, expires_in, a new refresh token
 * long and random enough, and an ID token, when returned, consistent with
 * the first (OIDC Core §12.2).
 */
async function refreshChecks (t: Test, flow: Flow, client: SuiteClient, scope: string | null): Promise<string> {
  await advance(service, 1)
  const refreshToken = flow.tokens.refresh_token!
  const response = await tokenRequest(flow.configuration.metadata, client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(scope ? { scope } : {}) })
  t.equal(response.status, 200, `refresh 200: ${response.status === 200 ? '' : response.text}`)
  t.equal(mimeType(response.headers.get('content-type')), 'application/json')
  t.ok((response.headers.get('cache-control') ?? '').split(',').map((part) => part.trim()).includes('no-store'), 'Cache-Control: no-store')
  t.equal(response.body.error, undefined, 'no error')
  const accessToken = String(response.body.access_token ?? '')
  t.equal(String(response.body.token_type).toLowerCase(), 'bearer')
  t.ok(shannonBits(accessToken) > 96, 'the access token looks random enough')
  t.match(accessToken, VSCHAR, 'the access token has only allowed characters (RFC 6749 A.12)')
  t.ok(response.body.expires_in !== undefined, 'expires_in')
  if (response.body.expires_in !== undefined) t.ok(isNumber(response.body.expires_in) && (response.body.expires_in as number) > 0, 'expires_in is positive seconds')
  const newRefresh = response.body.refresh_token as string | undefined
  if (newRefresh !== undefined) {
    t.ok(Buffer.byteLength(newRefresh) * 8 >= 128, 'the new refresh token has at least 128 bits (RFC 6749 §10.10)')
    t.ok(shannonBits(newRefresh) > 96, 'the new refresh token looks random enough')
  }
  if (response.body.id_token !== undefined) {
    const second = parseIdToken(String(response.body.id_token))
    const first = flow.idToken.claims
    t.equal(second.claims.iss, first.iss, 'same iss (OIDC Core §12.2)')
    t.equal(second.claims.sub, first.sub, 'same sub')
    t.not(second.claims.iat, first.iat, 'a new iat')
    t.same(second.claims.aud, first.aud, 'same aud')
    if (second.claims.auth_time !== undefined) t.equal(second.claims.auth_time, first.auth_time, 'auth_time of the original authentication')
    if (first.azp === undefined) t.equal(second.claims.azp, undefined, 'no azp where the first had none')
    else t.equal(second.claims.azp, first.azp, 'same azp')
  }
  const resource = await callUserInfo(flow.configuration.metadata, accessToken, 'get')
  t.equal(resource.status, 200, 'the refreshed access token reaches the protected resource')
  return newRefresh ?? refreshToken
}

t.test('oidcc-refresh-token', async (t) => {
  const { metadata } = await configure(t)
  const supportsOffline = (metadata.scopes_supported as string[] | undefined)?.includes('offline_access') ?? false
  t.ok(supportsOffline, 'scopes_supported lists offline_access')
  const scope = supportsOffline ? 'openid offline_access' : 'openid'
  const agent = new UserAgent(issuer)

  // The first client; prompt=consent because of offline_access (OIDC Core §11).
  const first = await codeFlow(t, { agent, request: { scope, extra: { prompt: 'consent' } } })
  t.ok(first.consented, 'prompt=consent showed the consent page')
  t.type(first.tokens.refresh_token, 'string', 'a refresh token, so the suite runs the module')
  if (typeof first.tokens.refresh_token !== 'string') return
  t.ok((metadata.grant_types_supported as string[]).includes('refresh_token'), 'grant_types_supported lists refresh_token (OIDC Discovery §3)')
  t.match(first.tokens.refresh_token, VSCHAR, 'the refresh token has only allowed characters (RFC 6749 A.17)')
  await refreshChecks(t, first, suiteClient, scope)

  // The second client, in the same browser, its nonce 43 characters long.
  const second = await codeFlow(t, { agent, client: suiteClient2, request: { scope, nonceLength: 43, extra: { prompt: 'consent' } } })
  t.type(second.tokens.refresh_token, 'string')
  if (typeof second.tokens.refresh_token !== 'string') return
  const secondRefresh = await refreshChecks(t, second, suiteClient2, null)

  // RefreshTokenRequestExpectingErrorSteps: the second client's refresh token presented by the first.
  const crossed = await tokenRequest(metadata, suiteClient, { grant_type: 'refresh_token', refresh_token: secondRefresh, scope })
  t.match(String(crossed.body.error), ERROR_CODE_CHARS, 'an error')
  t.equal(crossed.status, 400, 'refused with 400 (OIDC Core §3.1.3.4)')
  t.equal(mimeType(crossed.headers.get('content-type')), 'application/json')
  t.equal(crossed.body.error, 'invalid_grant', 'invalid_grant: the refresh token is bound to its client (RFC 6749 §6)')
})

t.test('oidcc-ensure-request-with-valid-pkce-succeeds', async (t) => {
  const flow = await codeFlow(t)
  t.equal(flow.request.params.code_challenge_method, 'S256')
  t.ok(flow.request.params.code_challenge, 'the request carried a code_challenge, the exchange its code_verifier (RFC 7636 §4.5)')
})

// ---------------------------------------------------------------------------
// The suite's departures and skips, as they stand.

t.test('PKCE is required (DESIGN §3.15): the suite\'s requests without code_challenge are refused', async (t) => {
  // Every module but oidcc-ensure-request-with-valid-pkce-succeeds sends no code_challenge; against this service it ends here.
  const { metadata } = await configure(t)
  const request = authorizationRequest(suiteClient, { omit: ['code_challenge', 'code_challenge_method'] })
  const stop = await new UserAgent(issuer).navigate(authorizationUrl(metadata, request.params))
  t.ok(stop.redirect, 'answered by redirect')
  if (!stop.redirect) return
  t.equal(errorCallbackChecks(t, stop.redirect, request, metadata), 'invalid_request')
})

t.test('the modules the suite skips for this server, and why', async (t) => {
  const { metadata } = await configure(t)
  const scopes = metadata.scopes_supported as string[]
  // oidcc-scope-address, oidcc-scope-phone, oidcc-scope-all: skipped when scopes_supported lacks the scope (OIDCCCheckScopesSupportedContainScopeTest).
  t.notOk(scopes.includes('address'), 'scopes_supported lacks address')
  t.notOk(scopes.includes('phone'), 'scopes_supported lacks phone')
  // oidcc-idtoken-signature, oidcc-idtoken-unsigned, oidcc-request-uri-unsigned-…: not applicable to a static client; there is no registration endpoint to make a dynamic one.
  t.equal(metadata.registration_endpoint, undefined, 'no registration_endpoint')
})

// ---------------------------------------------------------------------------
// oidcc-config-certification-test-plan

/** RFC 8414 §2 and OIDC Discovery §3 metadata, and the registered extensions: the JSON type each has. */
const METADATA_TYPES: Record<string, 'url' | 'strings' | 'boolean'> = {
  issuer: 'url',
  authorization_endpoint: 'url',
  token_endpoint: 'url',
  userinfo_endpoint: 'url',
  jwks_uri: 'url',
  registration_endpoint: 'url',
  end_session_endpoint: 'url',
  revocation_endpoint: 'url',
  introspection_endpoint: 'url',
  check_session_iframe: 'url',
  device_authorization_endpoint: 'url',
  pushed_authorization_request_endpoint: 'url',
  authorization_challenge_endpoint: 'url',
  backchannel_authentication_endpoint: 'url',
  service_documentation: 'url',
  op_policy_uri: 'url',
  op_tos_uri: 'url',
  scopes_supported: 'strings',
  response_types_supported: 'strings',
  response_modes_supported: 'strings',
  grant_types_supported: 'strings',
  acr_values_supported: 'strings',
  subject_types_supported: 'strings',
  id_token_signing_alg_values_supported: 'strings',
  id_token_encryption_alg_values_supported: 'strings',
  id_token_encryption_enc_values_supported: 'strings',
  userinfo_signing_alg_values_supported: 'strings',
  userinfo_encryption_alg_values_supported: 'strings',
  userinfo_encryption_enc_values_supported: 'strings',
  request_object_signing_alg_values_supported: 'strings',
  request_object_encryption_alg_values_supported: 'strings',
  request_object_encryption_enc_values_supported: 'strings',
  token_endpoint_auth_methods_supported: 'strings',
  token_endpoint_auth_signing_alg_values_supported: 'strings',
  revocation_endpoint_auth_methods_supported: 'strings',
  revocation_endpoint_auth_signing_alg_values_supported: 'strings',
  introspection_endpoint_auth_methods_supported: 'strings',
  introspection_endpoint_auth_signing_alg_values_supported: 'strings',
  display_values_supported: 'strings',
  claim_types_supported: 'strings',
  claims_supported: 'strings',
  claims_locales_supported: 'strings',
  ui_locales_supported: 'strings',
  code_challenge_methods_supported: 'strings',
  prompt_values_supported: 'strings',
  dpop_signing_alg_values_supported: 'strings',
  claims_parameter_supported: 'boolean',
  request_parameter_supported: 'boolean',
  request_uri_parameter_supported: 'boolean',
  require_request_uri_registration: 'boolean',
  require_pushed_authorization_requests: 'boolean',
  require_signed_request_object: 'boolean',
  authorization_response_iss_parameter_supported: 'boolean',
  frontchannel_logout_supported: 'boolean',
  frontchannel_logout_session_supported: 'boolean',
  backchannel_logout_supported: 'boolean',
  backchannel_logout_session_supported: 'boolean',
  tls_client_certificate_bound_access_tokens: 'boolean',
}

/** A well-formed BCP 47 tag (RFC 5646 §2.1, the common shape: language, script, region, variants). */
const BCP47 = /^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?(-([a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*$/i

t.test('oidcc-discovery-endpoint-verification', async (t) => {
  // The suite reaches a deployed OP over https: the same service with an https issuer, beside the loopback one on its database.
  const deployedIssuer = 'https://op.example.test'
  const deployed = await buildTestApp({ ISSUER: deployedIssuer }, { database: service.database })
  t.teardown(() => deployed.close())
  const discoveryUrl = `${deployedIssuer}/.well-known/openid-configuration`

  // CheckDiscEndpointDiscoveryUrl: an https URL ending in /.well-known/openid-configuration.
  t.ok(discoveryUrl.startsWith('https://') && new URL(discoveryUrl).pathname.endsWith('/.well-known/openid-configuration'))

  // GetDynamicServerConfiguration, EnsureDiscoveryEndpointResponseStatusCodeIs200, CheckDiscoveryEndpointReturnedJsonContentType (OIDC Discovery §4).
  const response = await deployed.app.inject({ method: 'GET', url: new URL(discoveryUrl).pathname })
  t.equal(response.statusCode, 200)
  t.equal(mimeType(response.headers['content-type'] as string), 'application/json')
  const metadata = json(response)

  // OIDCCCheckDiscEndpointResponseTypesSupported (static client): at least one OpenID Connect response type.
  const responseTypes = metadata.response_types_supported as string[]
  const oidcResponseTypes = ['code', 'code id_token', 'id_token', 'id_token token', 'code id_token token', 'code token']
  const sameSet = (a: string, b: string) => a.split(' ').sort().join(' ') === b.split(' ').sort().join(' ')
  t.ok(Array.isArray(responseTypes) && responseTypes.some((type) => oidcResponseTypes.some((oidc) => sameSet(type, oidc))), 'response_types_supported has an OpenID Connect response type')

  // CheckDiscEndpointIssuer: the issuer is where the document was fetched from (OIDC Discovery §4.3).
  t.equal(String(metadata.issuer).replace(/\/$/, ''), discoveryUrl.slice(0, -'/.well-known/openid-configuration'.length), 'issuer matches the discovery URL')
  // CheckDiscEndpointIssuerIsValidUrl (RFC 8414 §2): https, a host, no query, fragment or user information.
  const issuerUrl = new URL(String(metadata.issuer))
  t.equal(issuerUrl.protocol, 'https:')
  t.ok(issuerUrl.hostname)
  t.equal(issuerUrl.search + issuerUrl.hash + issuerUrl.username + issuerUrl.password, '', 'no query, fragment or user information')
  // …and the loopback service's document names its own issuer the same way.
  const loopback = await getJson(`${issuer}/.well-known/openid-configuration`)
  t.equal(loopback.body.issuer, issuer, 'the loopback service\'s issuer matches its discovery URL')

  // ValidateServerMetadataAgainstSchema: every known member has its type.
  for (const [name, value] of Object.entries(metadata)) {
    const type = METADATA_TYPES[name]
    if (type === 'url') t.ok(typeof value === 'string' && URL.canParse(value), `${name} is a URL`)
    if (type === 'strings') t.ok(Array.isArray(value) && value.every((item) => typeof item === 'string'), `${name} is an array of strings`)
    if (type === 'boolean') t.type(value, 'boolean', `${name} is a boolean`)
  }
  // CheckForUnexpectedParametersInServerMetadata.
  t.same(Object.keys(metadata).filter((name) => !(name in METADATA_TYPES)), [], 'only registered metadata members')

  // CheckDiscEndpointSubjectTypesSupported.
  t.ok((metadata.subject_types_supported as string[]).some((type) => type === 'public' || type === 'pairwise'), 'subject_types_supported has public or pairwise')

  // OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported: OIDC Discovery §3 and OIDC Core §15.1 ask for RS256.
  // A deliberate departure (CONFORMANCE.md): DESIGN §3.1 and §3.15 fix the keys to ES256 (or EdDSA), so the
  // document names exactly the algorithm every ID token is signed with, and no RSA key is published.
  t.same(metadata.id_token_signing_alg_values_supported, ['ES256'], 'id_token_signing_alg_values_supported is ES256 alone (DESIGN §3.15; the departure from OIDC Core §15.1 is documented)')

  // OIDCCCheckDiscEndpointUserinfoSigningAlgValuesSupported: an array when present.
  if (metadata.userinfo_signing_alg_values_supported !== undefined) t.ok(Array.isArray(metadata.userinfo_signing_alg_values_supported))

  // CheckDiscEndpointAuthorizationEndpoint, …TokenEndpoint, …UserinfoEndpoint, …RegistrationEndpoint (when present), CheckJwksUri: https URLs.
  for (const name of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) {
    t.ok(typeof metadata[name] === 'string' && new URL(metadata[name] as string).protocol === 'https:', `${name} is an https URL`)
  }
  if (metadata.registration_endpoint !== undefined) t.equal(new URL(String(metadata.registration_endpoint)).protocol, 'https:')

  // FetchServerKeys, ValidateJwksSequence (OIDC Discovery §3 jwks_uri).
  const keys = await deployed.app.inject({ method: 'GET', url: new URL(String(metadata.jwks_uri)).pathname })
  t.equal(keys.statusCode, 200, 'the JWKS')
  const jwks = json<JSONWebKeySet>(keys)
  t.ok(Array.isArray(jwks.keys) && jwks.keys.length > 0, 'a keys array')
  for (const key of jwks.keys) {
    t.ok(await importJWK(key as JWK).then(() => true, () => false), `key ${key.kid} is a usable JWK`)
    t.same(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'].filter((member) => member in key), [], `key ${key.kid}: public only`)
  }

  // CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256 (a warning, only when the member is present).
  if (metadata.request_object_signing_alg_values_supported !== undefined) {
    t.ok((metadata.request_object_signing_alg_values_supported as string[]).includes('RS256'), 'request_object_signing_alg_values_supported includes RS256')
  }

  // OIDCCCheckDiscEndpointClaimsSupported (a warning): claims_supported, an array.
  t.ok(Array.isArray(metadata.claims_supported), 'claims_supported is listed (OIDC Discovery §3 RECOMMENDED)')

  // OIDCCCheckDiscEndpointGrantTypesSupported: when present, a non-empty array.
  if (metadata.grant_types_supported !== undefined) t.ok(Array.isArray(metadata.grant_types_supported) && (metadata.grant_types_supported as string[]).length > 0)

  // CheckDiscEndpointScopesSupportedContainsOpenId, CheckDiscEndpointScopesSupportedSyntax (RFC 6749 §3.3, A.4).
  const scopes = metadata.scopes_supported as string[]
  t.ok(scopes.includes('openid'), 'scopes_supported has openid')
  t.same(scopes.filter((scope) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(scope)), [], 'every scope is a scope-token')

  // CheckDiscEndpointLocalesSyntax, …CanonicalCasing.
  for (const name of ['ui_locales_supported', 'claims_locales_supported']) {
    const locales = metadata[name] as string[] | undefined
    if (locales !== undefined) t.same(locales.filter((tag) => !BCP47.test(tag)), [], `${name}: BCP 47 tags`)
  }

  // CheckDiscEndpointAllEndpointsAreHttps: every *_endpoint.
  for (const [name, value] of Object.entries(metadata)) {
    if (name.endsWith('_endpoint')) t.equal(new URL(String(value)).protocol, 'https:', `${name} is https`)
  }

  // EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray (RFC 8414 §2, RFC 7636 §4.3).
  const methods = metadata.code_challenge_methods_supported as string[] | undefined
  if (methods !== undefined && methods.length > 0) t.ok(methods.includes('S256') || methods.includes('plain'), 'code_challenge_methods_supported names a PKCE method')
})
