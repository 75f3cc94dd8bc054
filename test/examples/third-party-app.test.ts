import t from 'tap'
import { buildThirdPartyApp } from '../../examples/third-party-app/src/app.js'
import { freePort, json, listeningTestApp } from '../helpers/app.js'
import { injectAs, PASSWORD, signup, signupAdmin } from '../helpers/users.js'

/**
 * The platform and the example third-party app (examples/third-party-app,
 * openid-client) over real HTTP, driven as a browser would be, with fetch
 * and a cookie jar: an admin registers the app as a confidential
 * third-party client through the admin API; a user signs in through the
 * app (the platform's sign-in page, its consent page, the app's callback)
 * and the app shows who they are; signing out of the app ends the
 * platform's browser session too.
 */

const auth = await listeningTestApp()
const { issuer } = auth
t.teardown(auth.close)

const admin = await signupAdmin(auth.app)
const port = await freePort()
const appOrigin = `http://127.0.0.1:${port}`
const registration = await injectAs(auth.app, admin.access_token, 'POST', '/admin/clients', {
  client_name: 'Example third-party app',
  redirect_uris: [`${appOrigin}/callback`],
  post_logout_redirect_uris: [`${appOrigin}/`],
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
})
if (registration.statusCode !== 201) throw new Error(`client registration: ${registration.statusCode} ${registration.body}`)
const registered = json<{ client_id: string; client_secret: string }>(registration)

const example = await buildThirdPartyApp({
  issuer,
  clientId: registered.client_id,
  clientSecret: registered.client_secret,
  redirectUri: `${appOrigin}/callback`,
  postLogoutRedirectUri: `${appOrigin}/`,
  logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
})
await example.listen({ port, host: '127.0.0.1' })
t.teardown(() => example.close())

// --- a browser: cookies per origin, redirects followed by hand, forms read from the HTML -------------------------

interface Form {
  action: URL
  fields: Record<string, string>
}

/** The HTML entities a server escapes attribute values with. */
function decodeEntities (text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'" })[name]!)
}

function attributes (tag: string): Record<string, string> {
  const found: Record<string, string> = {}
  for (const match of tag.matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    found[match[1]!.toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '')
  }
  return found
}

/** The page's POST forms, with their hidden inputs' values. */
function formsOf (html: string, pageUrl: URL): Form[] {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].flatMap((match) => {
    const form = attributes(match[1]!)
    if ((form.method ?? 'get').toLowerCase() !== 'post') return []
    const fields: Record<string, string> = {}
    for (const input of match[2]!.matchAll(/<input\b([^>]*)>/gi)) {
      const attrs = attributes(input[1]!)
      if (attrs.type === 'hidden' && attrs.name) fields[attrs.name] = attrs.value ?? ''
    }
    return [{ action: new URL(form.action ?? '', pageUrl), fields }]
  })
}

class Browser {
  private readonly jars = new Map<string, Map<string, string>>()
  /** Every request and its answer's status, for a failure's message. */
  readonly trail: string[] = []

  cookies (url: URL): Map<string, string> {
    let jar = this.jars.get(url.origin)
    if (!jar) this.jars.set(url.origin, (jar = new Map()))
    return jar
  }

  async request (method: 'GET' | 'POST', url: URL, form?: Record<string, string>): Promise<Response> {
    const jar = this.cookies(url)
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers.cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      // A form posted from one of the origin's own pages.
      headers.origin = url.origin
    }
    const response = await fetch(url, { method, headers, redirect: 'manual', ...(form ? { body: new URLSearchParams(form).toString() } : {}) })
    this.trail.push(`${method} ${url.href} -> ${response.status}`)
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...options] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at).trim()
      const removed = options.some((option) => /^\s*max-age\s*=\s*0\s*$/i.test(option)) ||
        options.some((option) => /^\s*expires\s*=/i.test(option) && Date.parse(option.split('=').slice(1).join('=')) < Date.now())
      if (removed) jar.delete(name)
      else jar.set(name, pair.slice(at + 1).trim())
    }
    return response
  }

  /**
   * Requests `url` and follows redirects to the page they end on: its URL,
   * status and HTML. Every page on the platform's origin is answered as a
   * user would: the sign-in form with `email` and the password, the consent
   * form with Allow, the sign-out confirmation with Sign out.
   */
  async visit (method: 'GET' | 'POST', start: URL, email: string, seen: { consent: number; signIn: number } = { consent: 0, signIn: 0 }) {
    let url = start
    let response = await this.request(method, url, method === 'POST' ? {} : undefined)
    for (let steps = 0; steps < 20; steps++) {
      const location = response.headers.get('location')
      if (response.status >= 300 && response.status < 400 && location) {
        url = new URL(location, url)
        response = await this.request('GET', url)
        continue
      }
      const html = await response.text()
      if (url.origin !== issuer) return { url, status: response.status, html }
      const forms = formsOf(html, url)
      const signIn = forms.find((form) => form.action.pathname === '/oauth/sign-in')
      const consent = forms.find((form) => form.action.pathname === '/oauth/consent')
      const signOut = forms.find((form) => form.action.pathname === '/oauth/logout')
      if (signIn) {
        seen.signIn++
        url = signIn.action
        response = await this.request('POST', url, { ...signIn.fields, email, password: PASSWORD })
      } else if (consent) {
        seen.consent++
        url = consent.action
        response = await this.request('POST', url, { ...consent.fields, decision: 'allow' })
      } else if (signOut) {
        url = signOut.action
        response = await this.request('POST', url, signOut.fields)
      } else {
        throw new Error(`no form to answer at ${url.href} (${response.status}): ${html.slice(0, 800)}\n${this.trail.join('\n')}`)
      }
    }
    throw new Error(`too many steps:\n${this.trail.join('\n')}`)
  }
}

const user = await signup(auth.app, { label: 'third-party' })

t.test('signed out, the app offers a sign-in with the platform', async (t) => {
  const page = await new Browser().visit('GET', new URL(`${appOrigin}/`), user.email)
  t.equal(page.status, 200)
  t.match(page.html, /href="\/login"/)
})

t.test('a sign-in through the app: the platform asks for the password and the consent, and the app learns who signed in', async (t) => {
  const browser = new Browser()
  const seen = { consent: 0, signIn: 0 }
  const page = await browser.visit('GET', new URL(`${appOrigin}/login`), user.email, seen)
  t.equal(page.url.href, `${appOrigin}/`, "back on the app's page", { trail: browser.trail })
  t.equal(page.status, 200)
  t.equal(seen.signIn, 1, 'one sign-in page')
  t.equal(seen.consent, 1, 'a third-party client asks for consent')
  t.match(page.html, `data-testid="email">${user.email}<`, 'the page shows the email of the ID token')
  t.match(page.html, new RegExp(`&quot;sub&quot;: &quot;${user.id}&quot;`), 'the claims name the user')
  t.ok(browser.trail.some((line) => line.startsWith(`GET ${appOrigin}/callback?`)), 'through the callback')
  const callback = new URL(browser.trail.find((line) => line.startsWith(`GET ${appOrigin}/callback?`))!.split(' ')[1]!)
  t.equal(callback.searchParams.get('iss'), issuer, 'the answer names the issuer (RFC 9207)')

  // The consent is stored: a second sign-in in the same browser goes straight back (SSO, no page).
  const again = await browser.visit('GET', new URL(`${appOrigin}/login`), user.email, seen)
  t.equal(again.url.href, `${appOrigin}/`)
  t.match(again.html, `data-testid="email">${user.email}<`)
  t.same(seen, { consent: 1, signIn: 1 }, 'no second sign-in page, no second consent')

  // The user sees the app among theirs.
  const grants = await injectAs(auth.app, user.access_token, 'GET', '/users/me/grants')
  t.equal(grants.statusCode, 200)
  t.match(json(grants), { items: [{ clientId: registered.client_id, clientName: 'Example third-party app' }] })

  // The app spent its pending sign-in: the same callback URL again is refused before the code reaches the platform.
  const replay = await browser.request('GET', callback)
  t.equal(replay.status, 400, 'the app refuses a replayed callback')
})

t.test('signing out of the app ends the platform session too', async (t) => {
  const browser = new Browser()
  const seen = { consent: 0, signIn: 0 }
  await browser.visit('GET', new URL(`${appOrigin}/login`), user.email, seen)
  const out = await browser.visit('POST', new URL(`${appOrigin}/logout`), user.email, seen)
  t.equal(out.url.href, `${appOrigin}/`, 'back on the app', { trail: browser.trail })
  t.match(out.html, /not signed in/)
  t.ok(browser.trail.some((line) => line.startsWith(`GET ${issuer}/oauth/logout?`)), "through the platform's end-session endpoint")
  // The platform's browser session is over: the next sign-in asks for the password again.
  const before = seen.signIn
  const back = await browser.visit('GET', new URL(`${appOrigin}/login`), user.email, seen)
  t.equal(back.url.href, `${appOrigin}/`)
  t.equal(seen.signIn, before + 1, 'the sign-in page again')
})

t.test('a callback without a sign-in of this browser is refused', async (t) => {
  const response = await new Browser().request('GET', new URL(`${appOrigin}/callback?code=abc&state=def&iss=${encodeURIComponent(issuer)}`))
  t.equal(response.status, 400)
})
