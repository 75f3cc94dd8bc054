import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { json } from '../helpers/app.js'
import { holdNextSessionStart } from '../helpers/hold.js'
import { pkcePair } from '../helpers/oauth.js'
import { PASSWORD, type Response, type Tokens } from './context.js'

/** What several sections of the attack catalogue (catalogue-*.ts) assert and measure alike. */

export function assertInvalidToken (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 401, `${label}: 401 (${response.body.slice(0, 120)})`)
  t.match(String(response.headers['www-authenticate'] ?? ''), /^Bearer error="invalid_token"/, `${label}: RFC 6750 invalid_token challenge`)
}

export function assertInvalidGrant (t: Test, response: Response, label = 'refused') {
  t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 120)})`)
  t.equal(json(response).error, 'invalid_grant', `${label}: invalid_grant`)
}

export function assertNo5xx (t: Test, response: Response, label: string) {
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${label}: 4xx, got ${response.statusCode} (${response.body.slice(0, 120)})`)
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

// ------------------------------------------------------------ the two ways in with a password

type App = FastifyInstance

export interface SignInOptions {
  /** The client (sent only when given at the token endpoint, where the default client is mobile; always sent at the challenge endpoint, mobile by default). */
  clientId?: string
  headers?: Record<string, string>
  remoteAddress?: string
  /** The body's encoding: JSON, or a form as a cross-site page would send it (default: JSON at the token endpoint, the draft's form at the challenge endpoint). */
  encoding?: 'json' | 'form'
  /** Further parameters of the request. */
  extra?: Record<string, unknown>
}

/** What proves the second step of a password login: a TOTP code, a recovery code or a passkey assertion. */
export type SecondFactorProof = { otp: string } | { recovery_code: string } | { credential: unknown }

/**
 * A way into an account, as the login rows of the catalogue attack it: the
 * password grant and the grants finishing its login at POST /auth/token
 * (PASSWORD_GRANT=enabled), or the authorization challenge endpoint
 * (draft-ietf-oauth-first-party-apps-04, DESIGN §3.16), whose answer is a
 * code exchanged with PKCE. A row written against a path runs unchanged
 * against the other.
 */
export interface SignInPath {
  /** How titles and labels name it. */
  readonly name: string
  /** A password sign-in's first request, answered as it is: tokens or an error; a code (200), insufficient_authorization (403) or an error. */
  password(app: App, username: string, password: string, options?: SignInOptions): Promise<Response>
  /** The token of the second step an answer asks for (mfa_required's mfa_token, insufficient_authorization's auth_session), or null. */
  stepTokenOf(answer: Response): string | null
  /** A password sign-in of an account with a second factor: the token of its second step; throws on any other answer. */
  secondStepToken(app: App, email: string, options?: SignInOptions): Promise<string>
  /** The second step with its token and a proof, answered as it is. */
  secondStep(app: App, token: string, proof: SecondFactorProof, options?: SignInOptions): Promise<Response>
  /** A passkey sign-in (the first factor) with an assertion, answered as it is. */
  passkey(app: App, credential: unknown, options?: SignInOptions): Promise<Response>
  /** Takes an answer of this path to tokens: a code is exchanged at POST /auth/token with its flow's verifier (and `options`' client and headers); any other answer is given back as it is. */
  tokens(app: App, answer: Response, options?: SignInOptions): Promise<Response>
  /** How a second-step token that is spent, expired, unknown, or another client's or transport's is refused. */
  assertStepTokenRefused(t: Test, response: Response, label: string): void
  /**
   * Holds the next password sign-in of `app` between its password check and
   * what the check leads to (the password grant's session start; the
   * challenge endpoint's code), until `release()`: `reached` settles once a
   * sign-in waits there. Makes login races deterministic.
   */
  holdAfterPasswordCheck(app: App): { reached: Promise<void>; release(): void }
}

/** Holds the next AuthorizationCodes.issue call of `app` (a sign-in past its checks, before its code exists) until `release()`. */
export function holdNextCodeIssue (app: App): { reached: Promise<void>; release(): void } {
  const codes = app.authorizationCodes
  const original = codes.issue
  let arrive!: () => void
  let open!: () => void
  const reached = new Promise<void>((resolve) => (arrive = resolve))
  const gate = new Promise<void>((resolve) => (open = resolve))
  codes.issue = async (...args) => {
    codes.issue = original
    arrive()
    await gate
    return original.apply(codes, args)
  }
  return { reached, release: () => open() }
}

const PASSKEY_GRANT = 'urn:token-auth:grant-type:passkey'
const MFA_OTP_GRANT = 'urn:token-auth:grant-type:mfa-otp'

function post (app: App, url: string, fields: Record<string, unknown>, options: SignInOptions, encoding: 'json' | 'form'): Promise<Response> {
  const body = encoding === 'form'
    ? new URLSearchParams(Object.entries(fields).map(([name, value]): [string, string] => [name, typeof value === 'string' ? value : JSON.stringify(value)])).toString()
    : JSON.stringify(fields)
  const type = encoding === 'form' ? 'application/x-www-form-urlencoded' : 'application/json'
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': type, ...options.headers },
    payload: body,
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
  })
}

const withClient = (options: SignInOptions) => (options.clientId === undefined ? {} : { client_id: options.clientId })

/** The password grant and its family (mfa-otp, passkey) at POST /auth/token: the login rows as first written. */
export const PASSWORD_GRANT_PATH: SignInPath = {
  name: 'the password grant',
  password: (app, username, password, options = {}) =>
    post(app, '/auth/token', { grant_type: 'password', username, password, ...withClient(options), ...options.extra }, options, options.encoding ?? 'json'),
  stepTokenOf (answer) {
    const body = json<{ error?: string; mfa_token?: unknown }>(answer)
    return answer.statusCode === 400 && body.error === 'mfa_required' && typeof body.mfa_token === 'string' ? body.mfa_token : null
  },
  async secondStepToken (app, email, options = {}) {
    const answer = await this.password(app, email, PASSWORD, options)
    const token = this.stepTokenOf(answer)
    if (token === null) throw new Error(`expected mfa_required: ${answer.statusCode} ${answer.body}`)
    return token
  },
  secondStep: (app, token, proof, options = {}) =>
    post(app, '/auth/token', { grant_type: MFA_OTP_GRANT, mfa_token: token, ...proof, ...withClient(options), ...options.extra }, options, options.encoding ?? 'json'),
  passkey: (app, credential, options = {}) =>
    post(app, '/auth/token', { grant_type: PASSKEY_GRANT, credential, ...withClient(options), ...options.extra }, options, options.encoding ?? 'json'),
  tokens: async (_app, answer) => answer,
  assertStepTokenRefused: (t, response, label) => assertInvalidGrant(t, response, label),
  holdAfterPasswordCheck: (app) => holdNextSessionStart(app),
}

export const CHALLENGE_ENDPOINT = '/oauth/authorize-challenge'

/** The flow a code or an auth_session of the challenge endpoint belongs to: its client and PKCE verifier. */
interface Flow {
  clientId: string
  verifier: string
}

/**
 * The authorization challenge endpoint (DESIGN §3.16): every first request
 * a new flow (response_type=code, a fresh S256 challenge), the second step
 * with the auth_session, codes exchanged at POST /auth/token with
 * grant_type=authorization_code, client_id, code and code_verifier, and no
 * redirect_uri. Remembers each flow's verifier by its auth_session and code.
 */
export class ChallengePath implements SignInPath {
  readonly name = 'the authorization challenge endpoint'
  private readonly flows = new Map<string, Flow>()

  /** One request to the endpoint as given (client_id added, mobile by default), answered as it is; a code or auth_session in the answer is remembered with `flow`. */
  async request (app: App, fields: Record<string, unknown>, options: SignInOptions, flow?: Flow): Promise<Response> {
    const clientId = options.clientId ?? 'mobile'
    const encoding = options.encoding ?? ('credential' in fields ? 'json' : 'form')
    const answer = await post(app, CHALLENGE_ENDPOINT, { client_id: clientId, ...fields, ...options.extra }, options, encoding)
    if (flow) {
      const body = json<{ authorization_code?: unknown; auth_session?: unknown }>(answer)
      if (answer.statusCode === 200 && typeof body.authorization_code === 'string') this.flows.set(body.authorization_code, flow)
      if (answer.statusCode === 403 && typeof body.auth_session === 'string') this.flows.set(body.auth_session, flow)
    }
    return answer
  }

  /** A first request of a new flow with these credentials. */
  start (app: App, credentials: Record<string, unknown>, options: SignInOptions = {}): Promise<Response> {
    const pkce = pkcePair()
    const flow = { clientId: options.clientId ?? 'mobile', verifier: pkce.verifier }
    return this.request(app, { response_type: 'code', code_challenge: pkce.challenge, code_challenge_method: 'S256', ...credentials }, options, flow)
  }

  password (app: App, username: string, password: string, options: SignInOptions = {}): Promise<Response> {
    return this.start(app, { username, password }, options)
  }

  stepTokenOf (answer: Response): string | null {
    const body = json<{ error?: string; auth_session?: unknown }>(answer)
    return answer.statusCode === 403 && body.error === 'insufficient_authorization' && typeof body.auth_session === 'string' ? body.auth_session : null
  }

  async secondStepToken (app: App, email: string, options: SignInOptions = {}): Promise<string> {
    const answer = await this.password(app, email, PASSWORD, options)
    const token = this.stepTokenOf(answer)
    if (token === null) throw new Error(`expected insufficient_authorization: ${answer.statusCode} ${answer.body}`)
    return token
  }

  secondStep (app: App, token: string, proof: SecondFactorProof, options: SignInOptions = {}): Promise<Response> {
    return this.request(app, { auth_session: token, ...proof }, options, this.flows.get(token))
  }

  passkey (app: App, credential: unknown, options: SignInOptions = {}): Promise<Response> {
    return this.start(app, { credential }, options)
  }

  /** The verifier of the flow a code or auth_session belongs to. */
  verifierOf (codeOrSession: string): string {
    const flow = this.flows.get(codeOrSession)
    if (!flow) throw new Error('no flow of this path issued that code or auth_session')
    return flow.verifier
  }

  /** POST /auth/token with grant_type=authorization_code: the code, its client, the verifier (its flow's unless given), no redirect_uri. */
  exchange (app: App, code: string, options: SignInOptions & { verifier?: string } = {}): Promise<Response> {
    const flow = this.flows.get(code)
    const clientId = options.clientId ?? flow?.clientId ?? 'mobile'
    const verifier = options.verifier ?? flow?.verifier ?? pkcePair().verifier
    return post(app, '/auth/token', { grant_type: 'authorization_code', client_id: clientId, code, code_verifier: verifier, ...options.extra }, options, options.encoding ?? 'form')
  }

  async tokens (app: App, answer: Response, options: SignInOptions = {}): Promise<Response> {
    const body = json<{ authorization_code?: unknown }>(answer)
    if (answer.statusCode !== 200 || typeof body.authorization_code !== 'string') return answer
    return this.exchange(app, body.authorization_code, { ...options, extra: {} })
  }

  assertStepTokenRefused (t: Test, response: Response, label: string): void {
    t.equal(response.statusCode, 400, `${label}: 400 (${response.body.slice(0, 120)})`)
    t.equal(json(response).error, 'invalid_session', `${label}: invalid_session`)
  }

  holdAfterPasswordCheck (app: App): { reached: Promise<void>; release(): void } {
    return holdNextCodeIssue(app)
  }
}

/** A password sign-in through `path` to its tokens; throws unless they come. */
export async function signInTokens (path: SignInPath, app: App, email: string, options: SignInOptions = {}): Promise<Tokens> {
  const answer = await path.tokens(app, await path.password(app, email, PASSWORD, options), options)
  if (answer.statusCode !== 200) throw new Error(`sign-in through ${path.name}: ${answer.statusCode} ${answer.body}`)
  return json<Tokens>(answer)
}

/**
 * Promotes the account to admin straight in the database and signs in again
 * through `path` (as users.makeAdmin does with the password grant), waiting
 * (at most 5 s) until the admin API accepts the new token.
 */
export async function makeAdminThrough (path: SignInPath, app: App, account: { id: string; email: string }): Promise<Tokens> {
  await app.db.user.update({ where: { id: account.id }, data: { role: 'admin' } })
  const tokens = await signInTokens(path, app, account.email)
  for (let started = Date.now(); Date.now() - started < 5_000;) {
    const response = await app.inject({ method: 'GET', url: '/admin/users?limit=1', headers: { authorization: `Bearer ${tokens.access_token}` } })
    if (response.statusCode === 200) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return tokens
}
