import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { AuthClient, AuthError, EmailNotVerifiedError, InvalidCredentialsError, MemoryStore, MfaRequiredError } from '../../src/client/index.js'
import { listeningTestApp } from '../helpers/app.js'
import { advance, centreStep, enrolTotp, totpCode } from '../helpers/totp.js'
import { PASSWORD, signup } from '../helpers/users.js'

/**
 * The SDK's sign-in against a service as `npm start` runs it, with the
 * password grant off (PASSWORD_GRANT=disabled): `login` and
 * MfaRequiredError's second step go through the authorization challenge
 * endpoint (DESIGN §3.16) and a PKCE code exchange, in body transport on a
 * real socket. Every request the SDK sends is recorded, so the wire is
 * checked too: S256 over the verifier the exchange sends, the auth_session
 * of the 403 in the second step, no redirect_uri, and never a grant of the
 * password family.
 */

const service = await listeningTestApp(() => ({ PASSWORD_GRANT: 'disabled' }))
t.teardown(service.close)
const { app, issuer: baseUrl } = service

type Body = Record<string, unknown>
interface Sent {
  path: string
  body: Body
  status: number
  answer: Body
}

/** A mobile client whose requests (path, JSON body, status, JSON answer) are recorded. */
function recordedClient (t: Test) {
  const sent: Sent[] = []
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as Body) : {}
    const text = await response.clone().text()
    let answer: Body = {}
    try {
      answer = text ? (JSON.parse(text) as Body) : {}
    } catch {}
    sent.push({ path: new URL(String(input)).pathname, body, status: response.status, answer })
    return response
  }
  const store = new MemoryStore()
  const client = new AuthClient({ baseUrl, clientId: 'mobile', transport: 'body', store, fetch: recording, crossTab: false })
  t.teardown(() => client.close())
  return { client, store, sent }
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url')
const PASSWORD_FAMILY = ['password', 'urn:token-auth:grant-type:mfa-otp', 'urn:token-auth:grant-type:passkey']
const passwordFamilyRequests = (sent: Sent[]) => sent.filter((request) => request.path === '/auth/token' && PASSWORD_FAMILY.includes(String(request.body.grant_type)))

/** An account with a confirmed authenticator app, signed out; the clock moved past the step its confirmation spent. */
async function accountWithTotp () {
  const account = await signup(app)
  await centreStep(service)
  const enrolled = await enrolTotp(app, account.access_token, service.clock.now())
  await advance(service, 30)
  return { ...account, ...enrolled }
}

t.test('the service runs with the password grant off', async (t) => {
  const refused = await fetch(`${baseUrl}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'a@example.com', password: PASSWORD }) })
  t.equal(((await refused.json()) as Body).error, 'unsupported_grant_type')
  const metadata = (await (await fetch(`${baseUrl}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[]; authorization_challenge_endpoint: string }
  t.notOk(metadata.grant_types_supported.includes('password'), 'not in the metadata')
  t.equal(metadata.authorization_challenge_endpoint, `${baseUrl}/oauth/authorize-challenge`)
})

t.test('login: the challenge endpoint with PKCE S256, the code exchanged with its verifier; refresh; logout', async (t) => {
  const account = await signup(app)
  const { client, store, sent } = recordedClient(t)
  const claims = await client.login(account.email, PASSWORD)
  t.equal(claims?.sub, account.id)
  t.same(claims?.amr, ['pwd'])
  t.same(sent.map((request) => `${request.path} ${request.status}`), ['/oauth/authorize-challenge 200', '/auth/token 200'], 'two requests: the challenge, then the exchange')

  const [challenge, exchange] = sent as [Sent, Sent]
  t.match(challenge.body, { client_id: 'mobile', response_type: 'code', code_challenge_method: 'S256', username: account.email, password: PASSWORD })
  t.notOk('grant_type' in challenge.body, 'the challenge request names no grant')
  t.match(challenge.answer, { authorization_code: String })
  t.same(Object.keys(exchange.body).sort(), ['client_id', 'code', 'code_verifier', 'grant_type'], 'the exchange: no redirect_uri')
  t.match(exchange.body, { grant_type: 'authorization_code', client_id: 'mobile', code: challenge.answer.authorization_code })
  const verifier = String(exchange.body.code_verifier)
  t.match(verifier, /^[A-Za-z0-9_-]{43}$/, 'the verifier: 32 random bytes, base64url')
  t.equal(challenge.body.code_challenge, s256(verifier), 'the challenge is the S256 of the verifier the exchange sends')
  t.ok(await store.get(), 'body transport: the refresh token is stored')
  t.match(await client.request('/users/me'), { id: account.id, email: account.email }, 'the session works')

  const firstRefresh = await store.get()
  await client.refresh()
  t.not(await store.get(), firstRefresh, 'refresh rotates the token')
  t.equal(sent.at(-1)?.body.grant_type, 'refresh_token')
  t.match(await client.request('/users/me'), { id: account.id })

  const live = (await store.get())!
  await client.logout()
  t.notOk(client.isSignedIn)
  t.equal(await store.get(), null, 'the store is emptied')
  t.equal(sent.at(-1)?.path, '/auth/revoke')
  const revoked = await fetch(`${baseUrl}/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: live }) })
  t.match(await revoked.json(), { error: 'invalid_grant' }, 'the session is gone on the service')

  await client.login(account.email, PASSWORD)
  const again = sent.filter((request) => request.path === '/oauth/authorize-challenge').at(-1)!
  t.not(again.body.code_challenge, challenge.body.code_challenge, 'each sign-in has its own PKCE pair')
  t.same(passwordFamilyRequests(sent), [], 'no request of the password grant\'s family')
})

t.test('a wrong password is InvalidCredentialsError; an unknown address answers the same', async (t) => {
  const account = await signup(app)
  const { client, sent } = recordedClient(t)
  const wrong = await client.login(account.email, 'not the password').catch((error: unknown) => error)
  const unknown = await client.login(`nobody-${Date.now()}@sdk.test`, 'not the password').catch((error: unknown) => error)
  t.type(wrong, InvalidCredentialsError)
  t.type(unknown, InvalidCredentialsError)
  t.equal((wrong as Error).message, (unknown as Error).message)
  t.same(sent.map((request) => request.path), ['/oauth/authorize-challenge', '/oauth/authorize-challenge'], 'no exchange')
  t.notOk(client.isSignedIn)
})

t.test('TOTP: MfaRequiredError carries the auth_session; a wrong code keeps it; the right one finishes and spends it', async (t) => {
  const account = await accountWithTotp()
  const { client, sent } = recordedClient(t)
  const required = await client.login(account.email, PASSWORD).then(() => null, (error: unknown) => error)
  t.ok(required instanceof MfaRequiredError, `MfaRequiredError, got ${String(required)}`)
  if (!(required instanceof MfaRequiredError)) return
  t.equal(required.code, 'mfa_required', 'the SDK\'s code, as before')
  t.equal(required.status, 403, 'the service\'s insufficient_authorization')
  t.same(required.factors, ['otp', 'recovery_code'])
  t.notOk(client.isSignedIn)
  const first = sent[0]!
  t.equal(sent.length, 1, 'no exchange yet')
  t.match(first.answer, { error: 'insufficient_authorization', auth_session: /^mfa_/, factors: ['otp', 'recovery_code'] })

  await centreStep(service)
  const wrongCode = totpCode(account.secret, service.clock.now()) === '000000' ? '000001' : '000000'
  await t.rejects(required.complete({ otp: wrongCode }), InvalidCredentialsError, 'a wrong code')
  t.notOk(client.isSignedIn)
  const claims = await required.complete({ otp: totpCode(account.secret, service.clock.now()) })
  t.equal(claims?.sub, account.id)
  t.same(claims?.amr, ['mfa', 'otp', 'pwd'])
  t.equal(claims?.acr, 'urn:token-auth:acr:mfa')
  t.ok(client.isSignedIn)

  const steps = sent.filter((request) => request.path === '/oauth/authorize-challenge').slice(1)
  t.equal(steps.length, 2, 'two second steps: the wrong code and the right one')
  for (const step of steps) {
    t.same(Object.keys(step.body).sort(), ['auth_session', 'client_id', 'otp'], 'the step names the auth_session, not the password')
    t.equal(step.body.auth_session, first.answer.auth_session, 'the 403\'s auth_session')
  }
  const exchange = sent.at(-1)!
  t.equal(exchange.body.grant_type, 'authorization_code')
  t.equal(first.body.code_challenge, s256(String(exchange.body.code_verifier)), 'the code of the second step is exchanged with the first request\'s verifier')

  await t.rejects(required.complete({ otp: totpCode(account.secret, service.clock.now(), 1) }), { name: 'InvalidCredentialsError', message: /sign in again/ }, 'the flow ended with its code: the auth_session is spent')
  t.match(await client.request('/users/me'), { id: account.id })
  await client.refresh()
  t.equal(client.claims?.acr, 'urn:token-auth:acr:mfa', 'a refresh keeps the level')
  await client.logout()
  t.notOk(client.isSignedIn)
  t.same(passwordFamilyRequests(sent), [], 'no request of the password grant\'s family')
})

t.test('a recovery code finishes the second step, once', async (t) => {
  const account = await accountWithTotp()
  const { client, sent } = recordedClient(t)
  const required = (await client.login(account.email, PASSWORD).catch((error: unknown) => error)) as MfaRequiredError
  t.type(required, MfaRequiredError)
  const claims = await required.complete({ recoveryCode: account.recoveryCodes[0]! })
  t.equal(claims?.sub, account.id)
  t.ok(claims?.amr?.includes('mfa'))
  t.equal((await client.listFactors()).recoveryCodes.remaining, 9)
  t.equal(sent.filter((request) => request.path === '/oauth/authorize-challenge').at(-1)?.body.recovery_code, account.recoveryCodes[0])
  await client.logout()

  const again = (await client.login(account.email, PASSWORD).catch((error: unknown) => error)) as MfaRequiredError
  await t.rejects(again.complete({ recoveryCode: account.recoveryCodes[0]! }), InvalidCredentialsError, 'a spent recovery code is refused')
  await again.complete({ recoveryCode: account.recoveryCodes[1]! })
  t.ok(client.isSignedIn, 'the same MfaRequiredError takes another code')
  await client.logout()
  t.same(passwordFamilyRequests(sent), [], 'no request of the password grant\'s family')
})

t.test('REQUIRE_EMAIL_VERIFICATION: an unverified address is EmailNotVerifiedError, told only after the right password', async (t) => {
  const strict = await listeningTestApp(() => ({ PASSWORD_GRANT: 'disabled', REQUIRE_EMAIL_VERIFICATION: 'true' }))
  t.teardown(strict.close)
  const account = await signup(strict.app)
  const client = new AuthClient({ baseUrl: strict.issuer, clientId: 'mobile', transport: 'body', crossTab: false })
  t.teardown(() => client.close())
  await t.rejects(client.login(account.email, 'not the password'), InvalidCredentialsError)
  const error = await client.login(account.email, PASSWORD).catch((caught: unknown) => caught)
  t.type(error, EmailNotVerifiedError)
  t.equal((error as EmailNotVerifiedError).code, 'email_not_verified')
  t.notOk(client.isSignedIn)
})

t.test('without WebCrypto, sign-in fails before any request with webcrypto_unavailable', async (t) => {
  const account = await signup(app)
  const { client, sent } = recordedClient(t)
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto')
  // As in React Native without a polyfill: no crypto.subtle.
  Object.defineProperty(globalThis, 'crypto', { configurable: true, value: { getRandomValues: <T extends Uint8Array>(array: T) => array } })
  try {
    const error = await client.login(account.email, PASSWORD).catch((caught: unknown) => caught)
    t.type(error, AuthError)
    t.equal((error as AuthError).code, 'webcrypto_unavailable')
    t.match((error as AuthError).message, /polyfill/)
  } finally {
    if (descriptor) Object.defineProperty(globalThis, 'crypto', descriptor)
  }
  t.same(sent, [], 'nothing was sent')
  t.ok(await client.login(account.email, PASSWORD), 'with WebCrypto back, it signs in')
})
