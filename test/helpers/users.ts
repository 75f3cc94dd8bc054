import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { json } from './app.js'

/**
 * Accounts and credentials for tests that drive the service through
 * app.inject: sign-up, the password and refresh grants, an admin, and
 * requests made as a user. Each takes the app explicitly, so one helper
 * serves a file's main app and the second instances some tests build.
 *
 * `clientId` is sent only when given; without it the service uses its
 * default client (mobile), which is what a test of "no client_id" needs.
 * Helpers named after an outcome (signup, login, createApiKey) throw unless
 * the call succeeded: they set a test up and assert nothing; the *Request
 * and grant helpers return the raw response for tests that assert on it.
 */

export const PASSWORD = 'a fine passphrase'

type App = FastifyInstance
export type Response = LightMyRequestResponse

export interface Tokens {
  access_token: string
  refresh_token: string
}

/** A signed-up user with the tokens of the session its sign-up opened. */
export interface Account extends Tokens {
  id: string
  email: string
  sessionId: string
}

let counter = 0
/** An address no other call in this process returns. */
export const uniqueEmail = (label = 'user') => `${label}-${++counter}-${Date.now()}@users.test`

/** One part of a JWT, decoded without any check: 0 the header, 1 the claims. */
export function decodePart (token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

/** The claims of a JWT, unchecked. */
export const claimsOf = (token: string) => decodePart(token, 1)

/** The session id (`sid`) an access token names. */
export const sidOf = (accessToken: string) => claimsOf(accessToken).sid as string

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const withClient = (clientId: string | undefined) => (clientId === undefined ? {} : { client_id: clientId })

export interface SignupOptions {
  /** Names the account in its generated address (ignored when `email` is given). */
  label?: string
  email?: string
  password?: string
  clientId?: string
  headers?: Record<string, string>
  remoteAddress?: string
}

/** A POST with a JSON body, from `remoteAddress` when given (the rate limits key on it). */
function post (app: App, url: string, payload: unknown, options: { headers?: Record<string, string>; remoteAddress?: string }): Promise<Response> {
  const request: InjectOptions = {
    method: 'POST',
    url,
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
    payload: payload as Record<string, unknown>,
  }
  return app.inject(request)
}

/** POST /auth/signup as given, for tests that assert on the answer. */
export function signupRequest (app: App, payload: unknown, options: Pick<SignupOptions, 'headers' | 'remoteAddress'> = {}): Promise<Response> {
  return post(app, '/auth/signup', payload, options)
}

/** Signs a new user up; throws unless 201. */
export async function signup (app: App, options: SignupOptions = {}): Promise<Account> {
  const email = options.email ?? uniqueEmail(options.label)
  const response = await signupRequest(app, { email, password: options.password ?? PASSWORD, ...withClient(options.clientId) }, options)
  if (response.statusCode !== 201) throw new Error(`signup: ${response.statusCode} ${response.body}`)
  const body = json<{ user: { id: string } } & Tokens>(response)
  return { id: body.user.id, email, access_token: body.access_token, refresh_token: body.refresh_token, sessionId: sidOf(body.access_token) }
}

export interface GrantOptions {
  password?: string
  clientId?: string
  /** Further token-request parameters (scope, a client_id that overrides clientId...). */
  extra?: Record<string, unknown>
  headers?: Record<string, string>
  remoteAddress?: string
}

/** The password grant (JSON body), answered as it is. */
export function passwordGrant (app: App, username: string, options: GrantOptions = {}): Promise<Response> {
  return post(
    app,
    '/auth/token',
    { grant_type: 'password', username, password: options.password ?? PASSWORD, ...withClient(options.clientId), ...options.extra },
    options
  )
}

/** The refresh-token grant (JSON body), answered as it is. */
export function refresh (app: App, refreshToken: string, options: Omit<GrantOptions, 'password'> = {}): Promise<Response> {
  return post(app, '/auth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...withClient(options.clientId), ...options.extra }, options)
}

/** A password login; throws unless 200. */
export async function login (app: App, email: string, options: GrantOptions = {}): Promise<Tokens & { sessionId: string }> {
  const response = await passwordGrant(app, email, options)
  if (response.statusCode !== 200) throw new Error(`login: ${response.statusCode} ${response.body}`)
  const tokens = json<Tokens>(response)
  return { ...tokens, sessionId: sidOf(tokens.access_token) }
}

/**
 * Marks the address of the token's user verified, straight in the database,
 * unless it already is: the setup of a test that adds a passkey or an API
 * key (the service refuses both on an unverified address), not the flow
 * under test (test/features/recovery/verify-email.test.ts covers the link).
 */
export async function markAddressVerified (app: App, accessToken: string): Promise<void> {
  const userId = claimsOf(accessToken).sub as string
  await app.db.user.updateMany({ where: { id: userId, emailVerifiedAt: null }, data: { emailVerifiedAt: new Date(app.now()) } })
}

/** A request carrying `token` as its Bearer credential. */
export function injectAs (
  app: App,
  token: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: Record<string, unknown>,
  headers: Record<string, string> = {}
): Promise<Response> {
  return app.inject({ method, url, headers: { ...bearer(token), ...headers }, ...(payload === undefined ? {} : { payload }) })
}

/** GET /users/me with a Bearer token. */
export const me = (app: App, accessToken: string) => injectAs(app, accessToken, 'GET', '/users/me')

/**
 * Promotes the account to admin straight in the database, as the
 * admin:create CLI does, and signs in again (tokens issued before carry the
 * old role and are refused). The revocation list learns of the change by
 * its next poll (≤ 1 s, DESIGN §3.5.7); until then the new admin token may
 * be refused as "role changed", so this waits (at most 5 s) until the admin
 * API accepts it.
 */
export async function makeAdmin (app: App, account: { id: string; email: string }, options: GrantOptions = {}): Promise<Tokens & { sessionId: string }> {
  await app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
  const tokens = await login(app, account.email, options)
  for (let started = Date.now(); Date.now() - started < 5_000;) {
    const response = await injectAs(app, tokens.access_token, 'GET', '/admin/users?limit=1')
    if (response.statusCode === 200) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return tokens
}

/** A new admin: signed up, promoted, and holding an admin session's tokens. */
export async function signupAdmin (app: App, options: SignupOptions = {}, grant: GrantOptions = {}): Promise<Account> {
  const account = await signup(app, { label: 'admin', ...options })
  return { ...account, ...(await makeAdmin(app, account, grant)) }
}

export interface CreatedApiKey {
  id: string
  key: string
  prefix: string
  name: string
  scopes: string[]
  expiresAt: string | null
  createdAt: string
}

/** POST /api-keys; throws unless 201. */
export async function createApiKey (
  app: App,
  accessToken: string,
  body: { name: string; scopes: string[]; expiresAt?: string } & Record<string, unknown>
): Promise<CreatedApiKey> {
  await markAddressVerified(app, accessToken)
  const response = await injectAs(app, accessToken, 'POST', '/api-keys', body)
  if (response.statusCode !== 201) throw new Error(`create key: ${response.statusCode} ${response.body}`)
  return json<CreatedApiKey>(response)
}
