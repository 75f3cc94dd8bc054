import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import type { CDPSession, Locator, Page, Response } from 'playwright-core'
import type { Test } from 'tap'
import { buildTestApp, freePort, type TestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, listenOnLoopback, watchPage } from '../helpers/browser.js'
import { authorizeUrl, pkcePair } from '../helpers/oauth.js'
import { bearer, markAddressVerified, signup, signupAdmin, type Account } from '../helpers/users.js'

/**
 * The hosted sign-in pages' passkey buttons (DESIGN §3.12, §3.15) in
 * headless Chromium with the DevTools protocol's virtual authenticator (a
 * CTAP2 platform authenticator with resident keys and user verification),
 * driven by the pages' own script: a first-party client's authorization
 * request signed in with "Sign in with a passkey" (a passkey as the first
 * factor: hwk or swk, user and mfa in the ID token, acr mfa), and a password
 * sign-in finished on the second-step page with "Use a passkey" (pwd, the key
 * and mfa). Each lands on the client's redirect URI with a code and iss,
 * which is exchanged with its PKCE verifier. The passkeys are registered
 * through the API (POST /users/me/passkeys/options, then
 * navigator.credentials.create() in the browser, then POST
 * /users/me/passkeys), so that the virtual authenticator holds them. No CSP
 * violation, page error or console error on the pages.
 *
 * WebAuthn needs a secure context and an RP ID that is a domain:
 * http://localhost is both, so the service's ISSUER is
 * http://localhost:<port> (listening on 127.0.0.1), WEBAUTHN_RP_ID=localhost
 * and WEBAUTHN_ORIGINS its origin. The client's redirect URI is on another
 * loopback origin, http://127.0.0.1:<port>, served by this file.
 */

const PASSWORD = 'a fine passphrase'
const SCOPE = 'openid email'
const MFA_ACR = 'urn:token-auth:acr:mfa'

await browserTest('the hosted pages\' passkey buttons in headless Chromium with a virtual authenticator', run)

/** The service listening on 127.0.0.1 as http://localhost:<port>, closed when `t` ends. */
async function serviceOnLocalhost (t: Test): Promise<TestApp & { origin: string }> {
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const origin = `http://localhost:${port}`
    const server = await buildTestApp({ ISSUER: origin, COOKIE_SECURE: 'false', CORS_ORIGINS: '', WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: origin })
    try {
      await server.app.listen({ port, host: '127.0.0.1' })
      t.teardown(server.close)
      return { ...server, origin }
    } catch (error) {
      lastError = error
      await server.close()
      if ((error as { code?: string }).code !== 'EADDRINUSE') throw error
    }
  }
  throw lastError
}

/** The client's redirect URI's server: a plain page at /callback (whatever its query), nothing else. */
async function callbackServer (t: Test): Promise<string> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://client').pathname
    if (request.method === 'GET' && path === '/callback') {
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      }).end('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Client</title></head><body><p>Back at the client.</p></body></html>')
    } else if (path === '/favicon.ico') {
      response.writeHead(204).end()
    } else {
      response.writeHead(404).end()
    }
  })
  return `http://127.0.0.1:${await listenOnLoopback(t, server)}`
}

async function addAuthenticator (cdp: CDPSession): Promise<string> {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return authenticatorId
}

interface VirtualCredential {
  credentialId: string
  isResidentCredential: boolean
  rpId: string
  signCount: number
}

interface Tokens {
  access_token: string
  id_token: string
  refresh_token?: string
  scope: string
}

async function run (t: Test) {
  const server = await serviceOnLocalhost(t)
  const { app, origin } = server
  const client = await callbackServer(t)
  const redirectUri = `${client}/callback`

  const admin = await signupAdmin(app)
  const registered = await app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: bearer(admin.access_token),
    payload: { client_name: 'Passkey Notes', redirect_uris: [redirectUri], scope: '', token_endpoint_auth_method: 'none', first_party: true },
  })
  t.equal(registered.statusCode, 201, registered.statusCode === 201 ? 'a first-party public client' : `a first-party public client: ${registered.body}`)
  const clientId = (registered.json() as { client_id: string }).client_id

  const context = await launchBrowser(t, 'hosted-passkeys')
  const page: Page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  watchPage(page, problems)
  const consoleErrors: string[] = []
  page.on('console', (message) => {
    // Chromium asks the service for a favicon it does not have: no error of the pages.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${message.text()} (${message.location().url})`)
  })
  if (process.env.DEBUG_E2E) {
    page.on('console', (message) => console.error('console', message.type(), message.text(), JSON.stringify(message.location())))
    page.on('response', (response) => console.error('response', response.status(), response.request().method(), response.url()))
  }

  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const authenticatorId = await addAuthenticator(cdp)
  const heldCredentials = async () => ((await cdp.send('WebAuthn.getCredentials', { authenticatorId })) as unknown as { credentials: VirtualCredential[] }).credentials

  // A blank document of the service's origin (answered by the browser, not the service), where the
  // registrations' navigator.credentials.create() runs: the origin and RP ID the service expects.
  const ceremonyPage = `${origin}/__e2e/ceremony`
  await page.route(ceremonyPage, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ceremony</title></head><body></body></html>' }))

  /**
   * Registers a passkey of the virtual authenticator for `account` through the API: the address
   * made verified first (the service adds no passkey to an unverified one); the sign-up's session
   * is the recent authentication adding one needs.
   */
  async function registerPasskey (account: Account, name: string) {
    await markAddressVerified(app, account.access_token)
    const options = await app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(account.access_token) })
    if (options.statusCode !== 200) throw new Error(`passkey options: ${options.statusCode} ${options.body}`)
    await page.goto(ceremonyPage)
    const response = await page.evaluate<Record<string, unknown>>(`(async (options) => {
      const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
      return credential.toJSON()
    })(${options.body})`)
    const created = await app.inject({ method: 'POST', url: '/users/me/passkeys', headers: bearer(account.access_token), payload: { name, response } })
    if (created.statusCode !== 201) throw new Error(`passkey registration: ${created.statusCode} ${created.body}`)
    return created.json() as { id: string; name: string }
  }

  /** Waits for `locator`; when it never shows, fails with the address and the text of the page the browser is on instead. */
  async function shows (locator: Locator, what: string) {
    try {
      await locator.waitFor()
    } catch (error) {
      const body = await page.locator('body').innerText().catch(() => '?')
      throw new Error(`${what} never showed; the browser is at ${page.url()}, showing: ${JSON.stringify(body.replace(/\s+/g, ' ').slice(0, 300))} (${(error as Error).message.split('\n')[0]})`)
    }
  }

  /**
   * Clicks `button` and answers the service's answer to the POST to `path` that the pages' script
   * sends; fails at once with the page's alert when the script reports the passkey did not work
   * instead, and with the page's text when the POST is refused.
   */
  async function passkeyPost (button: Locator, path: string): Promise<Response> {
    const answer = page.waitForResponse((response) => response.url() === `${origin}${path}` && response.request().method() === 'POST')
    const alert = page.locator('form[data-passkey] [role=alert]')
    const scriptFailed = alert.waitFor().then(async () => {
      throw new Error(`the page's script reported: ${JSON.stringify(await alert.textContent())}`)
    })
    await button.click()
    const response = await Promise.race([answer, scriptFailed])
    if (response.status() >= 400) {
      const body = await page.locator('body').innerText().catch(() => '?')
      throw new Error(`POST ${path} answered ${response.status()}: ${JSON.stringify(body.replace(/\s+/g, ' ').slice(0, 300))}`)
    }
    return response
  }

  /** Waits until the browser is at the redirect URI; answers its query, or fails with the page the browser stopped at. */
  async function backAtClient (): Promise<URLSearchParams> {
    try {
      await page.waitForURL((url) => url.origin === client && url.pathname === '/callback')
    } catch (error) {
      const body = await page.locator('body').innerText().catch(() => '?')
      throw new Error(`the browser never reached the redirect URI; it is at ${page.url()}, showing: ${JSON.stringify(body.replace(/\s+/g, ' ').slice(0, 300))} (${(error as Error).message.split('\n')[0]})`)
    }
    return new URL(page.url()).searchParams
  }

  /** The authorization request of a fresh flow: its PKCE verifier, state and nonce. */
  function authorization () {
    const pkce = pkcePair()
    const state = randomBytes(16).toString('base64url')
    const nonce = randomBytes(16).toString('base64url')
    const url = authorizeUrl(origin, { clientId, redirectUri, scope: SCOPE, state, nonce, codeChallenge: pkce.challenge })
    return { url, verifier: pkce.verifier, state, nonce }
  }

  /** The code exchanged at the token endpoint as the client does it (a form body, no browser); throws unless 200. */
  async function exchange (code: string, verifier: string): Promise<Tokens> {
    const response = await fetch(`${origin}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId }).toString(),
    })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`the code exchange answered ${response.status}: ${text}`)
    return JSON.parse(text) as Tokens
  }

  const jwks = createRemoteJWKSet(new URL(`${origin}/.well-known/jwks.json`))
  async function idTokenClaims (tokens: Tokens, nonce: string): Promise<JWTPayload & { amr?: string[]; acr?: string; sid?: string; nonce?: string }> {
    const { payload } = await jwtVerify(tokens.id_token, jwks, { issuer: origin, audience: clientId, algorithms: ['ES256'] })
    if (payload.nonce !== nonce) throw new Error(`the ID token's nonce ${String(payload.nonce)} is not the request's ${nonce}`)
    return payload
  }

  const hasKey = (amr: string[] | undefined) => amr !== undefined && (amr.includes('hwk') || amr.includes('swk'))

  await t.test('"Sign in with a passkey" on the sign-in page: a code for a two-factor sign-in', async (t) => {
    const user = await signup(app, { label: 'hosted-passkey', password: PASSWORD })
    const passkey = await registerPasskey(user, 'Laptop')
    const held = await heldCredentials()
    t.equal(held.length, 1, 'the virtual authenticator holds the new credential')
    t.equal(held[0]?.isResidentCredential, true, 'discoverable')
    t.equal(held[0]?.rpId, 'localhost', 'for the RP ID localhost')
    const stored = await app.db.passkey.findUniqueOrThrow({ where: { id: passkey.id } })
    t.equal(Buffer.from(held[0]!.credentialId, 'base64').toString('base64url'), stored.credentialId, 'the credential the service stored')

    const flow = authorization()
    const signInPage = await page.goto(flow.url)
    t.equal(signInPage?.status(), 200, 'the authorization request shows the sign-in page')
    const button = page.getByRole('button', { name: 'Sign in with a passkey' })
    await shows(button, 'the sign-in page\'s passkey button')
    t.equal(await page.getByLabel('Email').count(), 1, 'beside the password form')

    const answer = await passkeyPost(button, '/oauth/sign-in/passkey')
    t.equal(answer.status(), 303, 'the passkey form redirects')
    t.ok((answer.headers().location ?? '').startsWith(`${redirectUri}?`), `to the redirect URI at once, no consent for a first-party client (${answer.headers().location})`)
    const query = await backAtClient()
    t.equal(query.get('iss'), origin, 'with iss (RFC 9207)')
    t.equal(query.get('state'), flow.state, 'and the request\'s state')
    t.notOk(query.get('error'), `no error (${query.get('error')}: ${query.get('error_description')})`)
    const code = query.get('code')
    t.ok(code, 'and a code')

    const tokens = await exchange(code!, flow.verifier)
    t.equal(tokens.scope, SCOPE, 'the scope requested')
    const claims = await idTokenClaims(tokens, flow.nonce)
    t.equal(claims.sub, user.id, 'the passkey\'s user')
    t.ok(hasKey(claims.amr), `amr names a key (${String(claims.amr)})`)
    t.ok(claims.amr?.includes('user'), 'and user verification')
    t.ok(claims.amr?.includes('mfa'), 'and two factors')
    t.notOk(claims.amr?.includes('pwd'), 'and no password')
    t.equal(claims.acr, MFA_ACR, 'acr: the multi-factor level')
    t.equal(claims.email, user.email, 'email, for the email scope')
    const session = await app.db.session.findUniqueOrThrow({ where: { id: claims.sid! } })
    t.equal(session.passkeyId, passkey.id, 'the browser session knows its passkey')
    t.same(session.amr, claims.amr, 'and holds the same methods')
    t.ok((await app.db.passkey.findUniqueOrThrow({ where: { id: passkey.id } })).lastUsedAt, 'the passkey\'s last use is recorded')

    t.same(problems, [], 'no CSP violation or page error')
    t.same(consoleErrors, [], 'no console error')
  })

  await t.test('"Use a passkey" on the second-step page after the password: a code for pwd and the key', async (t) => {
    // A fresh browser at the service: the first user's browser session would sign this request in.
    await context.clearCookies()
    const user = await signup(app, { label: 'hosted-second-step', password: PASSWORD })
    const passkey = await registerPasskey(user, 'Phone')
    t.equal((await heldCredentials()).length, 2, 'the virtual authenticator holds both users\' credentials')

    const flow = authorization()
    await page.goto(flow.url)
    await shows(page.getByLabel('Email'), 'the sign-in page')
    await page.getByLabel('Email').fill(user.email)
    await page.getByLabel('Password').fill(PASSWORD)
    const [secondStep] = await Promise.all([
      page.waitForResponse((response) => response.url() === `${origin}/oauth/sign-in` && response.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ])
    t.equal(secondStep.status(), 200, 'the password is accepted and a second step asked')
    const button = page.getByRole('button', { name: 'Use a passkey' })
    await shows(button, 'the second-step page\'s passkey button')
    t.match(await page.locator('h1').textContent(), /Confirm it is you/, 'the second-step page')
    t.equal(await page.getByLabel('Code').count(), 0, 'no code is asked of an account whose one factor is a passkey')
    t.ok(await app.db.auditEvent.findFirst({ where: { type: 'login_mfa_required', userId: user.id } }), 'the password login asked for the second factor')

    const answer = await passkeyPost(button, '/oauth/sign-in/second-factor')
    t.equal(answer.status(), 303, 'the second-step form redirects')
    t.ok((answer.headers().location ?? '').startsWith(`${redirectUri}?`), `to the redirect URI (${answer.headers().location})`)
    const query = await backAtClient()
    t.equal(query.get('iss'), origin, 'with iss (RFC 9207)')
    t.equal(query.get('state'), flow.state, 'and the request\'s state')
    t.notOk(query.get('error'), `no error (${query.get('error')}: ${query.get('error_description')})`)
    const code = query.get('code')
    t.ok(code, 'and a code')

    const tokens = await exchange(code!, flow.verifier)
    const claims = await idTokenClaims(tokens, flow.nonce)
    t.equal(claims.sub, user.id, 'the password\'s user, not the first user of the authenticator')
    t.ok(claims.amr?.includes('pwd'), `amr names the password (${String(claims.amr)})`)
    t.ok(hasKey(claims.amr), 'and a key')
    t.ok(claims.amr?.includes('mfa'), 'and two factors')
    t.equal(claims.acr, MFA_ACR, 'acr: the multi-factor level')
    const session = await app.db.session.findUniqueOrThrow({ where: { id: claims.sid! } })
    t.equal(session.passkeyId, passkey.id, 'the browser session knows its passkey')

    t.same(problems, [], 'no CSP violation or page error')
    t.same(consoleErrors, [], 'no console error')
  })
}
