import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import type { Locator, Page, Response } from 'playwright-core'
import type { Test } from 'tap'
import { PROJECT_ROOT } from '../../src/paths.js'
import { listeningTestApp } from '../helpers/app.js'
import { browserTest, launchBrowser, listenOnLoopback, watchPage } from '../helpers/browser.js'
import { claimsOf, PASSWORD, signup, signupAdmin } from '../helpers/users.js'

/**
 * A single-page app signs in with oidc-client-ts (v3, its browser bundle)
 * in headless Chromium, against the authorization server and OpenID
 * provider of DESIGN §3.15: the SPA is served from an origin of its own
 * (http://localhost:<port>, another site than the service's
 * http://127.0.0.1:<port>) and registered as a public client through the
 * admin API. Code flow with PKCE through the hosted sign-in and consent
 * pages (checked at 420 px: no horizontal scroll, never framed), the ID
 * token's claims in the SPA and its signature under the JWKS, userinfo and
 * the token endpoint called cross-origin (CORS_ORIGINS), a refresh through
 * signinSilent, single sign-on with prompt=none, RP-initiated logout back
 * to the post-logout redirect URI with the state oidc-client-ts checks,
 * and prompt=none answered login_required afterwards.
 */

const FIXTURE = join(PROJECT_ROOT, 'test', 'fixtures', 'oidc-spa')
const OIDC_CLIENT_BUNDLE = join(dirname(createRequire(import.meta.url).resolve('oidc-client-ts/package.json')), 'dist', 'browser', 'oidc-client-ts.min.js')
const SCOPE = 'openid email offline_access'

await browserTest('a single-page app signs in with oidc-client-ts in headless Chromium', run)

interface SpaUser {
  id_token: string
  access_token: string
  refresh_token: string
  scope: string
  profile: Record<string, unknown>
}

/**
 * The SPA's server: its page (for `/` and `/callback.html`), its script,
 * oidc-client-ts's browser bundle, and `/config.json` naming the provider
 * and the client, which `config` fills in once the service is up.
 */
async function spaServer (t: Test, config: { authority?: string; clientId?: string }): Promise<string> {
  const [page, script, bundle] = await Promise.all([
    readFile(join(FIXTURE, 'index.html')),
    readFile(join(FIXTURE, 'spa.js')),
    readFile(OIDC_CLIENT_BUNDLE),
  ])
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://spa').pathname
    if (request.method !== 'GET') {
      response.writeHead(405).end()
    } else if (path === '/' || path === '/callback.html') {
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': `default-src 'none'; script-src 'self'; connect-src 'self' ${config.authority ?? ''}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      }).end(page)
    } else if (path === '/spa.js' || path === '/oidc-client-ts.min.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(path === '/spa.js' ? script : bundle)
    } else if (path === '/favicon.ico') {
      response.writeHead(204).end()
    } else if (path === '/config.json') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(config))
    } else {
      response.writeHead(404).end()
    }
  })
  return `http://localhost:${await listenOnLoopback(t, server)}`
}

/** OIDC Core §3.1.3.6: the left half of SHA-256 of the access token, base64url. */
function atHash (accessToken: string): string {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest()
  return digest.subarray(0, digest.length / 2).toString('base64url')
}

async function run (t: Test) {
  const spaConfig: { authority?: string; clientId?: string } = {}
  const spa = await spaServer(t, spaConfig)
  const service = await listeningTestApp(() => ({ COOKIE_SECURE: 'false', CORS_ORIGINS: spa }))
  t.teardown(service.close)
  const { app, issuer } = service

  const admin = await signupAdmin(app)
  const registered = await app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { authorization: `Bearer ${admin.access_token}` },
    payload: {
      client_name: 'Photo Album',
      redirect_uris: [`${spa}/callback.html`],
      post_logout_redirect_uris: [`${spa}/`],
      scope: '',
      token_endpoint_auth_method: 'none',
    },
  })
  t.equal(registered.statusCode, 201, `the SPA is registered as a public client: ${registered.body}`)
  const client = registered.json() as { client_id: string; client_secret?: string }
  t.notOk(client.client_secret, 'a public client has no secret')
  spaConfig.authority = issuer
  spaConfig.clientId = client.client_id

  const user = await signup(app, { label: 'spa-user' })

  const context = await launchBrowser(t, 'oidc-spa')
  const page: Page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  watchPage(page, problems)
  const consoleErrors: string[] = []
  page.on('console', (message) => {
    // The service has no favicon; Chromium's request for one is no error of the pages.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${message.text()} (${message.location().url})`)
  })
  // The main frame's addresses, and the service's answers to the page.
  const visited: string[] = []
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visited.push(frame.url())
  })
  const answers: Response[] = []
  page.on('response', (response) => {
    if (response.url().startsWith(`${issuer}/`)) answers.push(response)
  })
  const tokenRequests: string[] = []
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url() === `${issuer}/auth/token`) tokenRequests.push(new URLSearchParams(request.postData() ?? '').get('grant_type') ?? '')
  })
  if (process.env.DEBUG_E2E) {
    page.on('console', (message) => console.error('console', message.type(), message.text(), JSON.stringify(message.location())))
    page.on('response', (response) => console.error('response', response.status(), response.request().method(), response.url()))
    page.on('request', (request) => {
      // The Origin a form's POST carries is what the pages' CSRF check reads.
      if (request.method() === 'POST') void request.allHeaders().then((headers) => console.error('POST', request.url(), 'origin:', headers.origin, 'referer:', headers.referer))
    })
    page.on('load', () => {
      page.locator('body').innerText().then((body) => console.error('page', page.url(), JSON.stringify(body.slice(0, 300))), () => undefined)
    })
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
  /** Fails at once, with the page's text and the Origin the browser sent, when the POST of a form on the page `from` answered was refused. */
  async function formAccepted (answer: Response, from: Response) {
    if (answer.status() < 400) return
    const body = await page.locator('body').innerText().catch(() => '?')
    throw new Error(`POST ${new URL(answer.url()).pathname} answered ${answer.status()}: ${JSON.stringify(body.replace(/\s+/g, ' ').slice(0, 200))}; ` +
      `the browser sent Origin: ${await answer.request().headerValue('origin')}, the form's page had Referrer-Policy: ${await from.headerValue('referrer-policy')}`)
  }
  const status = page.getByTestId('status')
  /** Waits until the SPA's status line reads `text`. */
  const statusBecomes = (text: string) => shows(status.filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }), `the SPA's status "${text}"`)
  const spaUser = () => page.evaluate<SpaUser | null>('window.spa.manager.getUser().then((user) => user && { id_token: user.id_token, access_token: user.access_token, refresh_token: user.refresh_token, scope: user.scope, profile: user.profile })')
  const text = async (testId: string) => (await page.getByTestId(testId).textContent())?.trim()
  const answerTo = (method: string, path: string) => answers.filter((response) => response.request().method() === method && new URL(response.url()).pathname === path)
  const isRedirect = (response: Response | undefined) => response !== undefined && [302, 303].includes(response.status()) && (response.headers().location ?? '').startsWith(`${spa}/`)
  const scrollWidth = () => page.evaluate<number>('document.documentElement.scrollWidth')
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`))

  /** One step of the story; a step after a failed one is skipped, since each starts where the last ended. */
  let failedStep: string | null = null
  async function step (name: string, fn: (t: Test) => Promise<void>) {
    const results = await t.test(name, failedStep === null ? {} : { skip: `the step "${failedStep}" failed` }, fn)
    if (failedStep === null && results && !results.ok) failedStep = name
  }

  let first: SpaUser
  await step('code flow with PKCE through the hosted sign-in and consent pages, at 420 px', async (t) => {
    await page.setViewportSize({ width: 420, height: 800 })
    await page.goto(`${spa}/`)
    await statusBecomes('not signed in')

    const [signInPage] = await Promise.all([
      page.waitForResponse((response) => response.url().startsWith(`${issuer}/oauth/authorize?`)),
      page.getByRole('button', { name: 'Log in', exact: true }).click(),
    ])
    await shows(page.getByLabel('Email'), 'the sign-in page')
    t.equal(signInPage.status(), 200, 'the authorization request shows the sign-in page')
    const request = new URL(signInPage.url()).searchParams
    t.equal(request.get('client_id'), client.client_id)
    t.equal(request.get('redirect_uri'), `${spa}/callback.html`)
    t.equal(request.get('scope'), SCOPE)
    t.equal(request.get('code_challenge_method'), 'S256', 'oidc-client-ts sends PKCE S256')
    t.ok(request.get('nonce'), 'and the nonce the SPA passed')

    const csp = await signInPage.headerValues('content-security-policy')
    t.equal(csp.length, 1, 'one Content-Security-Policy')
    const directives = (csp[0] ?? '').split(';').map((directive) => directive.trim())
    t.ok(directives.includes("frame-ancestors 'none'"), `the sign-in page cannot be framed: ${csp[0]}`)
    t.equal(await signInPage.headerValue('x-frame-options'), 'DENY', 'X-Frame-Options: DENY for older browsers')
    t.ok(directives.includes(`form-action 'self' ${spa}`), 'form-action names the redirect URI\'s origin (DESIGN §3.15)')

    t.ok(await scrollWidth() <= 420, `no horizontal scroll at 420 px (scrollWidth ${await scrollWidth()})`)
    const controls = { Email: page.getByLabel('Email'), Password: page.getByLabel('Password'), 'Sign in': page.getByRole('button', { name: 'Sign in', exact: true }) }
    for (const [name, control] of Object.entries(controls)) {
      const box = await control.boundingBox()
      t.ok(box && box.x >= 0 && box.x + box.width <= 420, `"${name}" fits the width`)
    }

    await page.getByLabel('Email').fill(user.email)
    await page.getByLabel('Password').fill(PASSWORD)
    const [consentPage] = await Promise.all([
      page.waitForResponse((response) => response.url() === `${issuer}/oauth/sign-in` && response.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ])
    // The pages' CSRF check reads the Origin Chromium gives the form's POST: say which one it was when the sign-in is refused.
    await formAccepted(consentPage, signInPage)
    await shows(page.getByRole('button', { name: 'Allow' }), 'the consent page')
    t.equal(consentPage.status(), 200, 'a third-party client asks for consent')
    t.match(await consentPage.headerValue('content-security-policy'), /frame-ancestors 'none'/, 'the consent page cannot be framed either')
    t.equal(await consentPage.headerValue('x-frame-options'), 'DENY')
    t.match(await page.locator('main').textContent(), /Photo Album wants to/, 'the consent page names the client')
    t.ok(await scrollWidth() <= 420, `the consent page has no horizontal scroll at 420 px (scrollWidth ${await scrollWidth()})`)

    const [decision] = await Promise.all([
      page.waitForResponse((response) => response.url() === `${issuer}/oauth/consent` && response.request().method() === 'POST'),
      page.getByRole('button', { name: 'Allow' }).click(),
    ])
    await formAccepted(decision, consentPage)
    t.ok(isRedirect(decision), `the consent redirects to the SPA (${decision.status()})`)
    await statusBecomes('signed in')
    const callback = visited.map((url) => new URL(url)).find((url) => url.origin === spa && url.pathname === '/callback.html')
    t.ok(callback, 'the consent\'s redirect reached the SPA\'s callback (form-action allowed it)')
    t.equal(callback?.searchParams.get('iss'), issuer, 'with iss (RFC 9207)')
    t.ok(callback?.searchParams.get('code'), 'and a code')
    t.same(tokenRequests, ['authorization_code'], 'oidc-client-ts exchanged the code')
    const exchange = answerTo('POST', '/auth/token')[0]
    t.equal(exchange?.status(), 200)
    t.equal(await exchange?.headerValue('access-control-allow-origin'), spa, 'the token endpoint answers the SPA\'s origin (CORS_ORIGINS)')

    t.equal(await text('email'), user.email, 'the SPA shows the email of the ID token')
    t.equal(await text('sub'), user.id, 'and its subject')
    const held = await spaUser()
    t.ok(held, 'the SPA holds the user')
    first = held!
    t.equal(first.scope, SCOPE, 'every scope was granted')
    t.ok(first.refresh_token, 'a refresh token, for offline_access')

    const { payload, protectedHeader } = await jwtVerify(first.id_token, jwks, { issuer, audience: client.client_id, algorithms: ['ES256'] })
    t.equal(protectedHeader.typ, 'JWT')
    t.equal(payload.sub, user.id)
    t.equal(payload.email, user.email)
    t.equal(payload.email_verified, false)
    t.equal(payload.nonce, request.get('nonce'), 'the ID token carries the request\'s nonce')
    t.equal(payload.at_hash, atHash(first.access_token), 'at_hash is the access token\'s')
    t.ok(typeof payload.sid === 'string' && typeof payload.auth_time === 'number', 'sid and auth_time')
    t.same(payload.amr, ['pwd'])
    const access = claimsOf(first.access_token)
    t.equal(access.client_id, client.client_id)
    t.equal(access.sub, user.id)
    t.equal(access.scope, SCOPE)
    t.same(problems, [], 'no CSP violation or page error')
  })

  await step('the SPA reads userinfo cross-origin with its access token', async (t) => {
    await page.getByRole('button', { name: 'Load user info' }).click()
    await statusBecomes('user info loaded')
    t.equal(await text('userinfo-email'), user.email)
    t.equal(await text('userinfo-sub'), user.id)
    const userinfo = answerTo('GET', '/oauth/userinfo')[0]
    t.equal(userinfo?.status(), 200)
    t.equal(await userinfo?.headerValue('access-control-allow-origin'), spa)
  })

  await step('signinSilent refreshes through the token endpoint and rotates the refresh token', async (t) => {
    await page.getByRole('button', { name: 'Refresh tokens' }).click()
    await statusBecomes('refreshed')
    t.same(tokenRequests, ['authorization_code', 'refresh_token'], 'a refresh_token grant, no iframe')
    const refreshed = await spaUser()
    t.ok(refreshed)
    t.not(refreshed!.access_token, first.access_token, 'a new access token')
    t.not(refreshed!.refresh_token, first.refresh_token, 'a new refresh token (rotation)')
    t.equal(claimsOf(refreshed!.access_token).sub, user.id)
    t.equal(claimsOf(refreshed!.access_token).sid, claimsOf(first.access_token).sid, 'in the same session')
    t.equal(await text('email'), user.email, 'the profile stays')
    await page.getByRole('button', { name: 'Load user info' }).click()
    await statusBecomes('user info loaded')
    t.equal(await text('userinfo-sub'), user.id, 'the new access token reads userinfo')
  })

  await step('prompt=none signs in again through the browser session, without a page', async (t) => {
    const before = answerTo('GET', '/oauth/authorize').length
    await page.getByRole('button', { name: 'Log in without a prompt' }).click()
    await statusBecomes('signed in')
    const authorize = answerTo('GET', '/oauth/authorize').slice(before)
    t.equal(authorize.length, 1, 'one authorization request')
    t.ok(isRedirect(authorize[0]), `redirected at once, no page (SSO, the stored consent): ${authorize[0]?.status()}`)
    const again = await spaUser()
    t.equal(again?.profile.sub, user.id)
    t.not(again?.id_token, first.id_token, 'a new ID token')
    t.equal(claimsOf(again!.id_token).sid, claimsOf(first.id_token).sid, 'of the same browser session')
  })

  await step('signoutRedirect ends the browser session and comes back with the state oidc-client-ts checks', async (t) => {
    const before = visited.length
    const held = await spaUser()
    await page.getByRole('button', { name: 'Log out' }).click()
    await statusBecomes('signed out at the provider')
    const logout = answerTo('GET', '/oauth/logout')
    t.equal(logout.length, 1)
    t.ok(isRedirect(logout[0]), `id_token_hint names the browser session: no confirmation page (${logout[0]?.status()})`)
    const request = new URL(logout[0]!.url()).searchParams
    t.equal(request.get('id_token_hint'), held?.id_token, 'oidc-client-ts sent its ID token as id_token_hint')
    t.equal(request.get('post_logout_redirect_uri'), `${spa}/`)
    t.ok(request.get('state'), 'and a state')
    const back = visited.slice(before).map((url) => new URL(url)).find((url) => url.origin === spa && url.searchParams.has('state'))
    t.equal(back?.pathname, '/', 'the post-logout redirect URI')
    t.equal(back?.searchParams.get('state'), request.get('state'), 'with the state sent')
    t.equal(await spaUser(), null, 'the SPA dropped the user')
    const ended = await app.db.auditEvent.findFirst({ where: { type: 'browser_session_ended', userId: user.id } })
    t.ok(ended, 'the browser session ended, audited')
  })

  await step('after the logout, prompt=none answers login_required', async (t) => {
    const before = answerTo('GET', '/oauth/authorize').length
    const visitedBefore = visited.length
    await page.getByRole('button', { name: 'Log in without a prompt' }).click()
    await statusBecomes('error: login_required')
    const authorize = answerTo('GET', '/oauth/authorize').slice(before)
    t.equal(authorize.length, 1, 'one authorization request')
    t.ok(isRedirect(authorize[0]), `redirected back, no sign-in page: ${authorize[0]?.status()}`)
    const callback = visited.slice(visitedBefore).map((url) => new URL(url)).find((url) => url.origin === spa && url.pathname === '/callback.html')
    t.equal(callback?.searchParams.get('error'), 'login_required')
    t.equal(callback?.searchParams.get('iss'), issuer)
    t.ok(callback?.searchParams.get('state'), 'with the state oidc-client-ts matched')
    t.equal(await spaUser(), null)
    t.same(problems, [], 'no CSP violation or page error')
    t.same(consoleErrors, [], 'no console error')
  })
}
