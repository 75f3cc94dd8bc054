import { createHash } from 'node:crypto'
import type { CDPSession, Page, Request } from 'playwright-core'
import type { Test } from 'tap'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, watchPage } from '../helpers/browser.js'
import { stepAt, totpCode } from '../helpers/totp.js'
import { bearer, markAddressVerified, PASSWORD, signup, type Account } from '../helpers/users.js'

/**
 * The SDK's first-party sign-in (DESIGN §3.16) in headless Chromium, with
 * cookie transport, against a service whose password grant is off
 * (PASSWORD_GRANT=disabled, as `npm start` runs): the admin dashboard (the
 * SDK's `admin` client) signs in with a password and a TOTP second step,
 * with a passkey (the DevTools protocol's virtual authenticator), and with a
 * password and a passkey second step. Each goes through POST
 * /oauth/authorize-challenge and a code exchange with PKCE; every request
 * the page sends to the token and challenge endpoints is recorded, and none
 * is a grant of the password family. The refresh token stays in the
 * HttpOnly cookie, and a reload signs back in through it.
 *
 * WebAuthn needs a secure context and an RP ID that is a domain:
 * http://localhost is both, so the service's ISSUER is
 * http://localhost:<port> (listening on 127.0.0.1) and WEBAUTHN_RP_ID=localhost.
 */

const MFA_ACR = 'urn:token-auth:acr:mfa'
const PASSWORD_FAMILY = ['password', 'urn:token-auth:grant-type:mfa-otp', 'urn:token-auth:grant-type:passkey']

await browserTest('the SDK signs in to the dashboard through the authorization challenge endpoint, password grant off', run)

interface Recorded {
  path: string
  body: Record<string, unknown>
  request: Request
}

/** A request body as the service reads it: JSON (the SDK's) or a form. */
function bodyOf (request: Request): Record<string, unknown> {
  const data = request.postData() ?? ''
  if ((request.headers()['content-type'] ?? '').includes('json')) return data ? (JSON.parse(data) as Record<string, unknown>) : {}
  return Object.fromEntries(new URLSearchParams(data))
}

async function run (t: Test) {
  const server = await listeningTestApp((issuer) => ({
    ISSUER: issuer.replace('127.0.0.1', 'localhost'),
    WEBAUTHN_RP_ID: 'localhost',
    COOKIE_SECURE: 'false',
    CORS_ORIGINS: '',
    PASSWORD_GRANT: 'disabled',
  }))
  t.teardown(server.close)
  const { app } = server
  const origin = server.config.issuer
  t.equal(server.config.passwordGrant, false, 'the service runs with the password grant off')

  // What reaches the service, to check that the page's recording missed nothing.
  const received = { token: 0, challenge: 0 }
  app.server.on('request', (request) => {
    const path = request.url?.split('?')[0]
    if (request.method === 'POST' && path === '/auth/token') received.token++
    if (request.method === 'POST' && path === '/oauth/authorize-challenge') received.challenge++
  })

  /** Promotes a signed-up account to admin (its sign-up tokens, which carry the old role, stop working). */
  async function promote (account: Account): Promise<void> {
    await app.administration.updateUser({ actorId: account.id, userId: account.id, role: 'admin' })
    await app.revocations.sync()
  }

  // An admin with an authenticator app, enrolled through the API with the sign-up's session.
  const totpAdmin = await signup(app, { label: 'challenge-totp', password: PASSWORD })
  const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(totpAdmin.access_token) })
  const secret = (started.json() as { secret: string }).secret
  const confirmedStep = stepAt(Date.now())
  const confirmed = await app.inject({ method: 'POST', url: '/users/me/mfa/totp/confirm', headers: bearer(totpAdmin.access_token), payload: { code: totpCode(secret, confirmedStep * 30_000) } })
  t.equal(confirmed.statusCode, 200, 'the authenticator is set up')
  await promote(totpAdmin)

  const context = await launchBrowser(t, 'sdk-challenge')
  const page: Page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  watchPage(page, problems)
  if (process.env.DEBUG_E2E) {
    page.on('console', (message) => console.error('console', message.type(), message.text()))
    page.on('response', (response) => console.error('response', response.status(), response.request().method(), response.url()))
  }
  const recorded: Recorded[] = []
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (request.method() !== 'POST' || url.origin !== origin) return
    if (!['/auth/token', '/oauth/authorize-challenge', '/auth/passkey/options', '/auth/mfa/passkey-options'].includes(url.pathname)) return
    recorded.push({ path: url.pathname, body: bodyOf(request), request })
  })
  const since = (mark: number) => recorded.slice(mark)
  /** The refresh cookie (COOKIE_SECURE=false: no __Secure- prefix), as the browser would send it to /auth. */
  const refreshCookie = async () => (await context.cookies(`${origin}/auth/token`)).find((c) => c.name === 'refresh_token')
  const heldClaims = () => page.evaluate(() => (globalThis as unknown as { tokenAuthDashboard: { client: { claims: { sub: string; amr?: string[]; acr?: string } | null } } }).tokenAuthDashboard.client.claims)
  const signedIn = () => page.getByRole('button', { name: 'Sign out' }).waitFor()
  async function signOut () {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor()
  }
  async function submitPassword (email: string) {
    await page.getByLabel('Email').fill(email)
    await page.getByLabel('Password').fill(PASSWORD)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  }
  /** The sign-in's requests: the challenge steps, then one exchange, with PKCE and the CSRF defence. */
  async function checkFlow (t: Test, flow: Recorded[], steps: number) {
    const challenges = flow.filter((r) => r.path === '/oauth/authorize-challenge')
    const exchanges = flow.filter((r) => r.path === '/auth/token')
    t.equal(challenges.length, steps, `${steps} request(s) to the challenge endpoint`)
    t.equal(exchanges.length, 1, 'one request to the token endpoint')
    const [first] = challenges
    const exchange = exchanges[0]!
    t.match(first?.body, { client_id: 'admin', response_type: 'code', code_challenge: /^[A-Za-z0-9_-]{43}$/, code_challenge_method: 'S256' }, 'the first request: the admin client, PKCE S256')
    for (const later of challenges.slice(1)) t.match(later.body, { client_id: 'admin', auth_session: /^mfa_/ }, 'a later step names the auth_session')
    t.match(exchange.body, { grant_type: 'authorization_code', client_id: 'admin', code: String, code_verifier: /^[A-Za-z0-9_-]{43}$/ }, 'the exchange: the code and its verifier')
    t.notOk('redirect_uri' in exchange.body, 'no redirect_uri')
    // The browser computed the challenge: check it against the verifier here.
    t.equal(first?.body.code_challenge, createHash('sha256').update(String(exchange.body.code_verifier)).digest('base64url'), 'the challenge is the S256 of the exchanged verifier')
    for (const request of [...challenges, exchange]) {
      // allHeaders: with what the network layer adds (Origin).
      const headers = await request.request.allHeaders()
      t.equal(headers['x-requested-with'], 'token-auth-dashboard', `${request.path}: X-Requested-With (cookie transport's CSRF defence)`)
      t.equal(headers.origin, origin, `${request.path}: Origin`)
    }
    const answer = await (await exchange.request.response())?.json() as Record<string, unknown>
    t.ok(answer.access_token, 'the exchange answers an access token')
    t.notOk('refresh_token' in answer, 'and no refresh token in the body: cookie transport')
    const cookie = await refreshCookie()
    t.ok(cookie, 'the refresh token is in the cookie')
    t.match(cookie, { httpOnly: true, sameSite: 'Strict', path: '/auth' }, 'HttpOnly, SameSite=Strict, Path=/auth')
  }

  await t.test('password and a TOTP second step: two challenge requests, one exchange, the dashboard opens', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    const mark = recorded.length
    await submitPassword(totpAdmin.email)
    await page.getByLabel('Authentication code').waitFor()
    const first = since(mark)
    t.equal(first.length, 1, 'the password went to the challenge endpoint alone')
    t.equal((await first[0]!.request.response())?.status(), 403, 'insufficient_authorization')
    t.match(first[0]!.body, { username: totpAdmin.email, password: PASSWORD }, 'with username and password')

    await page.getByLabel('Authentication code').fill(totpCode(secret, Date.now(), 1) === '000000' ? '000001' : '000000')
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.getByTestId('second-step-error').waitFor()
    t.match(await page.getByTestId('second-step-error').textContent(), /wrong/, 'a wrong code is said so, and the step stays open')
    // The step after the one the confirmation spent: inside the window, and newer.
    await page.getByLabel('Authentication code').fill(totpCode(secret, (confirmedStep + 1) * 30_000))
    await page.getByRole('button', { name: 'Verify' }).click()
    await page.getByTestId('users').waitFor()
    const claims = await heldClaims()
    t.equal(claims?.sub, totpAdmin.id, 'signed in as the admin')
    t.same(claims?.amr, ['mfa', 'otp', 'pwd'], 'with the password and the code')
    t.equal(claims?.acr, MFA_ACR, 'at the multi-factor level')
    await checkFlow(t, since(mark), 3)

    // A reload signs back in through the cookie (the refresh grant), not through a sign-in.
    const beforeReload = recorded.length
    await page.reload()
    await page.getByTestId('users').waitFor()
    t.same(since(beforeReload).map((r) => `${r.path} ${String(r.body.grant_type)}`), ['/auth/token refresh_token'], 'the reload refreshed through the cookie')
    await signOut()
    t.notOk(await refreshCookie(), 'signing out clears the cookie')
  })

  // An admin whose one factor is a passkey of the browser's virtual authenticator.
  const cdp: CDPSession = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })
  const keyAdmin = await signup(app, { label: 'challenge-passkey', password: PASSWORD })
  await markAddressVerified(app, keyAdmin.access_token)
  const options = await app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(keyAdmin.access_token) })
  t.equal(options.statusCode, 200, 'passkey registration options')
  // A blank document of the service's origin (answered by the browser), where navigator.credentials.create() runs.
  const ceremonyPage = `${origin}/__e2e/ceremony`
  await page.route(ceremonyPage, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ceremony</title></head><body></body></html>' }))
  await page.goto(ceremonyPage)
  const response = await page.evaluate<Record<string, unknown>>(`(async (options) => {
    const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
    return credential.toJSON()
  })(${options.body})`)
  const created = await app.inject({ method: 'POST', url: '/users/me/passkeys', headers: bearer(keyAdmin.access_token), payload: { name: 'E2E key', response } })
  t.equal(created.statusCode, 201, 'the passkey is registered')
  const passkeyId = (created.json() as { id: string }).id
  await promote(keyAdmin)

  await t.test('"Sign in with a passkey": its assertion goes to the challenge endpoint, and its code is exchanged', async (t) => {
    await page.goto(`${origin}/dashboard/`)
    const mark = recorded.length
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    await signedIn()
    const claims = await heldClaims()
    t.equal(claims?.sub, keyAdmin.id, 'signed in as the passkey\'s admin')
    t.ok(claims?.amr?.includes('hwk') || claims?.amr?.includes('swk'), `amr names a key (${String(claims?.amr)})`)
    t.ok(claims?.amr?.includes('mfa'), 'and two factors')
    t.notOk(claims?.amr?.includes('pwd'), 'and no password')
    const flow = since(mark)
    t.equal(flow[0]?.path, '/auth/passkey/options', 'the options first')
    t.ok(flow.find((r) => r.path === '/oauth/authorize-challenge')?.body.credential, 'then the assertion, as credential')
    await checkFlow(t, flow.filter((r) => r.path !== '/auth/passkey/options'), 1)
    const session = await app.db.session.findUniqueOrThrow({ where: { id: String((await page.evaluate(() => (globalThis as unknown as { tokenAuthDashboard: { client: { claims: { sid: string } } } }).tokenAuthDashboard.client.claims.sid))) } })
    t.equal(session.passkeyId, passkeyId, 'the session knows its passkey')
    await signOut()
  })

  await t.test('password, then "Use my passkey" as the second step', async (t) => {
    const mark = recorded.length
    await submitPassword(keyAdmin.email)
    await page.getByRole('button', { name: 'Use my passkey' }).click()
    await signedIn()
    const claims = await heldClaims()
    t.equal(claims?.sub, keyAdmin.id, 'signed in as the admin')
    t.ok(claims?.amr?.includes('pwd'), `amr names the password (${String(claims?.amr)})`)
    t.ok(claims?.amr?.includes('hwk') || claims?.amr?.includes('swk'), 'and a key')
    t.equal(claims?.acr, MFA_ACR, 'at the multi-factor level')
    const flow = since(mark)
    const optionsRequest = flow.find((r) => r.path === '/auth/mfa/passkey-options')
    t.match(optionsRequest?.body, { mfa_token: /^mfa_/ }, 'the second step\'s options, for the auth_session')
    const steps = flow.filter((r) => r.path === '/oauth/authorize-challenge')
    t.equal(steps[1]?.body.auth_session, optionsRequest?.body.mfa_token, 'the same auth_session')
    t.ok(steps[1]?.body.credential, 'with the assertion')
    await checkFlow(t, flow.filter((r) => r.path !== '/auth/mfa/passkey-options'), 2)
    await signOut()
  })

  await t.test('no request of the password grant\'s family, and the recording saw every request', async (t) => {
    const tokenRequests = recorded.filter((r) => r.path === '/auth/token')
    t.same(tokenRequests.filter((r) => PASSWORD_FAMILY.includes(String(r.body.grant_type))).map((r) => r.body.grant_type), [], 'no grant_type=password (nor mfa-otp, passkey)')
    t.same([...new Set(tokenRequests.map((r) => r.body.grant_type))].sort(), ['authorization_code', 'refresh_token'], 'only code exchanges and the reload\'s refresh')
    t.equal(received.token, tokenRequests.length, 'every POST /auth/token the service received was recorded')
    t.equal(received.challenge, recorded.filter((r) => r.path === '/oauth/authorize-challenge').length, 'and every challenge request')
    t.same(problems, [], 'no CSP violation or page error')
  })
}
