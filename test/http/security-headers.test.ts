import Fastify, { type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import cacheControl from '../../src/http/cache-control.js'
import { buildTestApp, fileTestApp, json } from '../helpers/app.js'
import { authorizeUrl, followAuthorization, pkcePair } from '../helpers/oauth.js'
import { InjectedPageBrowser } from '../helpers/oauth-inject.js'
import { login, PASSWORD, signup, uniqueEmail } from '../helpers/users.js'

/**
 * Security headers and caching of every response (ASVS 5.0 V3.4 and V14.3,
 * OWASP Secure Headers): the test walks every operation of the OpenAPI
 * document, without credentials, with an admin's access token and with an
 * admin's API key, and checks each answer, errors included: nosniff, the
 * API's CSP that lets nothing load or frame, `X-Frame-Options: DENY`, and
 * `Cache-Control: no-store` except on the successful answers of the routes
 * declared public (JWKS, discovery), which keep their own caching. The
 * hosted sign-in pages (/oauth/authorize, its forms, logout) are walked too:
 * their HTML answers must not be framed either. Then the routes the document
 * hides: Swagger UI with its own CSP, and the default on public routes that
 * answer an error.
 */

const test = await fileTestApp({ SCOPES: 'profile' })
const { app } = test

/** The operations whose successful answers are public, and the caching each keeps. */
const PUBLIC_OPERATIONS: Record<string, RegExp> = {
  'GET /.well-known/jwks.json': /^public, max-age=\d+$/,
  'GET /.well-known/oauth-authorization-server': /^public, max-age=\d+$/,
  'GET /.well-known/openid-configuration': /^public, max-age=\d+$/,
  'GET /.well-known/ssf-configuration': /^public, max-age=\d+$/,
}

const { id: adminId, email: adminEmail } = await signup(app, { label: 'walker' })
await app.db.user.update({ where: { id: adminId }, data: { role: 'admin', emailVerifiedAt: new Date() } })

/** A fresh admin session for each call, so that a call which signs out or revokes sessions spoils no other. */
const adminToken = async () => (await login(app, adminEmail)).access_token
const createdKey = await app.inject({
  method: 'POST',
  url: '/api-keys',
  headers: { authorization: `Bearer ${await adminToken()}` },
  payload: { name: 'header walk', scopes: ['profile', 'introspect', 'events'] },
})
const apiKey = json<{ key: string }>(createdKey).key

/** Clients registered through the admin API: one the walk's /admin/clients/{id} calls name (and delete), one for the authorization requests. */
const registerClient = async (name: string) => {
  const registered = await app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { authorization: `Bearer ${await adminToken()}` },
    payload: { client_name: name, redirect_uris: ['https://rp.walk.test/cb'], token_endpoint_auth_method: 'client_secret_basic' },
  })
  if (registered.statusCode !== 201) throw new Error(`register ${name}: ${registered.statusCode} ${registered.body}`)
  return json<{ client_id: string; client_secret: string }>(registered)
}
const walkedClient = await registerClient('walked')
/** A webhook endpoint the walk's /admin/webhooks/{id} calls name (another after its deletion), and a stream of the API key's for /ssf/status. */
const createWebhook = async () =>
  json<{ id: string }>(
    await app.inject({ method: 'POST', url: '/admin/webhooks', headers: { authorization: `Bearer ${await adminToken()}` }, payload: { url: 'https://93.184.215.14/walk', events: ['*'] } })
  )
let walkedWebhook = await createWebhook()
const walkedStream = json<{ stream_id: string }>(await app.inject({ method: 'POST', url: '/ssf/stream', headers: { 'x-api-key': apiKey }, payload: {} }))
const authorizingClient = await registerClient('authorizing')
const authorizeParams = () => ({
  response_type: 'code',
  client_id: authorizingClient.client_id,
  redirect_uri: 'https://rp.walk.test/cb',
  scope: 'openid',
  code_challenge: pkcePair().challenge,
  code_challenge_method: 'S256',
})

/** An access token granted openid (UserInfo's scope) through the code flow, fresh for each call like adminToken. */
async function openidToken (): Promise<string> {
  const pkce = pkcePair()
  const back = await followAuthorization(new InjectedPageBrowser(app), authorizeUrl(app.config.issuer, {
    clientId: authorizingClient.client_id, redirectUri: 'https://rp.walk.test/cb', scope: 'openid', codeChallenge: pkce.challenge,
  }), { email: adminEmail, password: PASSWORD })
  const exchanged = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { authorization: `Basic ${Buffer.from(`${authorizingClient.client_id}:${authorizingClient.client_secret}`).toString('base64')}` },
    payload: { grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: 'https://rp.walk.test/cb', code_verifier: pkce.verifier },
  })
  if (exchanged.statusCode !== 200) throw new Error(`code exchange: ${exchanged.statusCode} ${exchanged.body}`)
  return json<{ access_token: string }>(exchanged).access_token
}

/** Bodies that get past validation where one is easy to give, so that successes are checked too; others get `{}`. */
async function bodyFor (operation: string): Promise<Record<string, unknown>> {
  switch (operation) {
    case 'POST /auth/token':
      return { grant_type: 'password', username: adminEmail, password: PASSWORD }
    case 'POST /auth/signup':
      return { email: uniqueEmail('walker'), password: PASSWORD }
    case 'POST /auth/introspect':
      return { token: await adminToken() }
    case 'POST /auth/revoke':
      return { token: 'not a token anyone holds' }
    case 'POST /api-keys/':
      return { name: 'walked', scopes: ['profile'] }
    case 'POST /admin/clients':
      return { client_name: 'walked', redirect_uris: ['https://rp.walk.test/cb'], token_endpoint_auth_method: 'none' }
    case 'PATCH /admin/clients/{id}':
      return { client_name: 'walked again' }
    case 'POST /oauth/authorize':
      return authorizeParams()
    default:
      return {}
  }
}

/**
 * `page`: a hosted sign-in page (its answer is HTML), whose Referrer-Policy is
 * same-origin (page-headers.ts: under no-referrer browsers send Origin: null
 * on the pages' own forms); neither sends anything to another origin.
 */
function checkHeaders (t: Test, response: LightMyRequestResponse, label: string, publicCaching?: RegExp, page = false) {
  const { headers } = response
  t.equal(headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
  t.equal(headers['x-frame-options'], 'DENY', `${label}: X-Frame-Options`)
  const csp = String(headers['content-security-policy']).split(';').map((directive) => directive.trim())
  t.ok(csp.includes("default-src 'none'") && csp.includes("frame-ancestors 'none'"), `${label}: the API's CSP`)
  if (page) t.ok(['no-referrer', 'same-origin'].includes(String(headers['referrer-policy'])), `${label}: Referrer-Policy sends nothing to another origin (${String(headers['referrer-policy'])})`)
  else t.equal(headers['referrer-policy'], 'no-referrer', `${label}: Referrer-Policy`)
  if (publicCaching && response.statusCode < 400) t.match(headers['cache-control'], publicCaching, `${label}: keeps its public caching`)
  else t.equal(headers['cache-control'], 'no-store', `${label}: no-store`)
}

t.test('every operation of the OpenAPI document, every way of calling it', async (t) => {
  const document = json<{ paths: Record<string, Record<string, { security?: unknown[]; responses?: Record<string, { content?: Record<string, unknown> }> }>> }>(
    await app.inject({ url: '/docs/json' })
  )
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      secured: Boolean(operation.security?.length),
      page: Boolean(operation.responses?.['200']?.content?.['text/html']),
    }))
  )
  t.ok(operations.length >= 20, `the document lists the API (${operations.length} operations)`)
  const answered = new Map<string, number[]>()

  for (const { method, path, secured, page } of operations) {
    const operation = `${method} ${path}`
    // Path ids name the admin: their own user (a real resource), nothing else (a 404); a client's, the registered one.
    const id = path.startsWith('/admin/clients/') ? walkedClient.client_id : path.startsWith('/admin/webhooks/') ? walkedWebhook.id : adminId
    const query =
      operation === 'GET /oauth/authorize' ? `?${new URLSearchParams(authorizeParams())}` : operation === 'GET /ssf/status' ? `?stream_id=${walkedStream.stream_id}` : ''
    const url = path.replace(/\{[^}]+\}/g, id) + query
    const credentials: [string, Record<string, string>][] = [
      ['no credentials', {}],
      ['access token', { authorization: `Bearer ${path === '/oauth/userinfo' ? await openidToken() : await adminToken()}` }],
      ['API key', { 'x-api-key': apiKey }],
    ]
    for (const [how, headers] of credentials) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : await bodyFor(operation)
      const response = await app.inject({ method: method as 'GET', url, headers, ...(body ? { payload: body } : {}) })
      t.not(response.statusCode, 500, `${operation} (${how}): no 500`)
      checkHeaders(t, response, `${operation} (${how}) ${response.statusCode}`, PUBLIC_OPERATIONS[operation], page)
      answered.set(operation, [...(answered.get(operation) ?? []), response.statusCode])
    }
    if (operation === 'DELETE /admin/webhooks/{id}') walkedWebhook = await createWebhook()
    // Refused without credentials (401, or 400 when the body fails validation first): decisions that must not be cached.
    if (secured) t.ok([400, 401].includes(answered.get(operation)![0]!), `${operation}: refused without credentials`)
  }

  // The walk checked real answers, not only refusals.
  for (const [operation, statuses] of answered) {
    if (operation.startsWith('GET ')) t.ok(statuses.some((status) => status === 200), `${operation}: a 200 was checked (${statuses.join(', ')})`)
  }
  for (const operation of ['POST /auth/token', 'POST /auth/signup', 'POST /auth/introspect', 'POST /auth/revoke', 'POST /api-keys/', 'POST /admin/clients', 'PATCH /admin/clients/{id}', 'POST /oauth/authorize', 'POST /oauth/userinfo']) {
    t.ok(answered.get(operation)?.some((status) => status >= 200 && status < 300), `${operation}: a success was checked`)
  }
  for (const operation of Object.keys(PUBLIC_OPERATIONS)) t.ok(answered.has(operation), `${operation} is in the document`)
})

/** What helmet sets only for a page a browser renders, or for browsers and plug-ins long gone (helmet.ts). */
const DOCUMENT_ONLY_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
}

/** What JSON answers and HTML pages both carry, the CSP aside. */
const COMMON_HEADERS = {
  'cross-origin-resource-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
}

t.test("helmet's set fitted to an API, as helmet's middleware sets it; no header that acts only on a page", async (t) => {
  const { headers } = await app.inject({ url: '/health' })
  t.match(headers, {
    'content-security-policy': "default-src 'none';frame-ancestors 'none'",
    ...COMMON_HEADERS,
  })
  for (const name of Object.keys(DOCUMENT_ONLY_HEADERS)) t.notOk(name in headers, `no ${name} on a JSON answer`)
})

t.test("the HTML pages carry helmet's whole set, with their own CSP", async (t) => {
  for (const url of ['/docs', '/dashboard/']) {
    const page = await app.inject({ url })
    t.equal(page.statusCode, 200, `${url} answers`)
    t.match(page.headers['content-type'], /^text\/html/, `${url} is a page`)
    t.match(page.headers, { ...DOCUMENT_ONLY_HEADERS, ...COMMON_HEADERS }, `${url}: helmet's whole set`)
    const csp = String(page.headers['content-security-policy'])
    t.match(csp, /(^|;)script-src 'self'(;|$)/, `${url}: its own CSP, which lets its scripts load`)
    t.match(csp, /(^|;)base-uri 'none'(;|$)/, `${url}: base-uri, which default-src does not cover`)
  }
})

t.test('no route answers without the headers: unknown paths, preflights, bad JSON', async (t) => {
  checkHeaders(t, await app.inject({ url: '/no/such/route' }), 'unknown path')
  checkHeaders(t, await app.inject({ url: '/.well-known/nothing' }), 'unknown path under a public prefix')
  checkHeaders(
    t,
    await app.inject({ method: 'OPTIONS', url: '/auth/token', headers: { origin: 'http://spa.test', 'access-control-request-method': 'POST' } }),
    'CORS preflight'
  )
  checkHeaders(
    t,
    await app.inject({ method: 'POST', url: '/auth/signup', headers: { 'content-type': 'application/json' }, payload: '{"email":' }),
    'malformed JSON'
  )
})

t.test('a rate-limited answer (429) carries them too', async (t) => {
  const limited = await buildTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '1' }, { database: test.database })
  t.teardown(limited.close)
  const attempt = () =>
    limited.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: adminEmail, password: 'wrong password' } })
  await attempt()
  const refused = await attempt()
  t.equal(refused.statusCode, 429)
  checkHeaders(t, refused, 'rate-limited')
})

t.test('Swagger UI at /docs: its own CSP, which lets its files load', async (t) => {
  const page = await app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['cache-control'], 'no-store')
  const csp = String(page.headers['content-security-policy']).split(';').map((directive) => directive.trim())
  for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
    t.ok(csp.includes(directive), directive)
  }
  t.match(csp.find((directive) => directive.startsWith('style-src ')), /^style-src 'self'( 'sha256-[A-Za-z0-9+/]+=*')*$/, 'styles from this origin, inline ones only by hash')
  t.notMatch(csp.join(';'), /unsafe-inline|unsafe-eval|https?:/, 'no inline script, no other origin')
  t.notMatch(page.body, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script in the page, which the CSP would block')

  const files = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!)
  t.ok(files.some((file) => file.endsWith('swagger-ui-bundle.js')), 'the page loads the Swagger UI bundle')
  for (const file of files) {
    const url = new URL(file, 'http://auth.test/docs').pathname
    t.ok(url.startsWith('/docs/'), `${file} is served by this origin under /docs/`)
    const response = await app.inject({ url })
    t.equal(response.statusCode, 200, `${url} loads`)
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${url}: nosniff`)
    t.match(response.headers['content-type'], /^(text\/css|application\/javascript|image\/png)/, `${url}: a type the page can use`)
  }
  const spec = await app.inject({ url: '/docs/json' })
  t.equal(spec.statusCode, 200, 'the document Swagger UI fetches (connect-src self)')
})

t.test('the default holds when a public route answers an error', async (t) => {
  const bare = Fastify()
  t.teardown(() => bare.close())
  await bare.register(cacheControl)
  bare.get('/public', { config: { publicCache: true } }, async (request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    if ((request.query as { fail?: string }).fail) throw Object.assign(new Error('keys unavailable'), { statusCode: 503 })
    return { keys: [] }
  })
  bare.get('/private', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return { me: 'personal' }
  })
  t.equal((await bare.inject({ url: '/public' })).headers['cache-control'], 'public, max-age=300', 'a public success keeps its caching')
  t.equal((await bare.inject({ url: '/public?fail=1' })).headers['cache-control'], 'no-store', 'a public route failing is not cached')
  t.equal((await bare.inject({ url: '/private' })).headers['cache-control'], 'no-store', 'a route not declared public cannot make itself public')
})
