import { createHash, randomBytes } from 'node:crypto'

/**
 * A browser for the hosted pages, by HTTP: a cookie jar, redirects
 * followed by hand, forms read from the HTML as a browser would submit them
 * (Origin set as a browser sets it on a form POST).
 */
export class PageBrowser {
  readonly cookies = new Map<string, string>()

  constructor (readonly issuer: string) {}

  cookieHeader (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  private absorb (response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a))
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  async get (url: string): Promise<Response> {
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: this.cookieHeader() } })
    if (new URL(url).origin === new URL(this.issuer).origin) this.absorb(response)
    return response
  }

  async post (path: string, fields: Record<string, string>, origin = new URL(this.issuer).origin): Promise<Response> {
    const response = await fetch(new URL(path, this.issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: this.cookieHeader(), origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    })
    this.absorb(response)
    return response
  }
}

/** The fields of the form posting to `action` in `html`, as the browser would send them (hidden inputs and pre-filled values). */
export function formFields (html: string, action: string): Record<string, string> | null {
  const forms = html.split('<form').slice(1)
  const form = forms.find((f) => f.includes(`action="${action}"`))
  if (!form) return null
  const fields: Record<string, string> = {}
  for (const match of form.split('</form>')[0]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[match[1]!] = unescapeHtml(match[2]!)
  }
  return fields
}

function unescapeHtml (text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
}

export function pkcePair (): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export interface AuthorizeOptions {
  clientId: string
  redirectUri: string
  scope?: string
  state?: string
  nonce?: string
  codeChallenge: string
  prompt?: string
  extra?: Record<string, string>
}

export function authorizeUrl (issuer: string, options: AuthorizeOptions): string {
  const url = new URL('/oauth/authorize', issuer)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', options.clientId)
  url.searchParams.set('redirect_uri', options.redirectUri)
  url.searchParams.set('code_challenge', options.codeChallenge)
  url.searchParams.set('code_challenge_method', 'S256')
  if (options.scope !== undefined) url.searchParams.set('scope', options.scope)
  if (options.state !== undefined) url.searchParams.set('state', options.state)
  if (options.nonce !== undefined) url.searchParams.set('nonce', options.nonce)
  if (options.prompt !== undefined) url.searchParams.set('prompt', options.prompt)
  for (const [name, value] of Object.entries(options.extra ?? {})) url.searchParams.set(name, value)
  return url.toString()
}

export interface SignInSteps {
  email: string
  password: string
  /** The second step's code, when the account has a factor. */
  code?: () => string
  /** What to answer the consent page with (default allow). */
  consent?: 'allow' | 'deny'
}

/**
 * Follows an authorization request through the hosted pages (sign-in,
 * second step, consent) to the redirect back to the client; answers that
 * redirect's URL. Starts from `url` (the authorization request, or any page
 * URL that leads there).
 */
export async function followAuthorization (browser: PageBrowser, url: string, steps: SignInSteps): Promise<URL> {
  let response = await browser.get(url)
  for (let step = 0; step < 6; step++) {
    if (response.status === 302 || response.status === 303) {
      const location = new URL(response.headers.get('location')!, browser.issuer)
      if (location.origin !== new URL(browser.issuer).origin || !location.pathname.startsWith('/oauth/')) return location
      response = await browser.get(location.toString())
      continue
    }
    const html = await response.text()
    const signIn = formFields(html, '/oauth/sign-in')
    const second = formFields(html, '/oauth/sign-in/second-factor')
    const consent = formFields(html, '/oauth/consent')
    if (signIn && !html.includes('role="alert"')) {
      response = await browser.post('/oauth/sign-in', { ...signIn, email: steps.email, password: steps.password })
    } else if (second && steps.code && !html.includes('role="alert"')) {
      response = await browser.post('/oauth/sign-in/second-factor', { ...second, code: steps.code() })
    } else if (consent) {
      response = await browser.post('/oauth/consent', { ...consent, decision: steps.consent ?? 'allow' })
    } else {
      throw new Error(`the pages stopped at a ${response.status} page: ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`)
    }
  }
  throw new Error('too many steps')
}
