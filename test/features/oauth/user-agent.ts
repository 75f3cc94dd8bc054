/**
 * A browser for the OAuth tests, over real HTTP: it keeps the cookies the
 * authorization server sets, follows its redirects, reads its HTML forms and
 * posts them as a browser would (form-encoded, with the page's Origin), and
 * stops where a redirect leaves the authorization server (a client's
 * redirect URI, never fetched). Each UserAgent is one browser profile: a new
 * one has no session at the authorization server.
 */

export interface Page {
  status: number
  url: URL
  headers: Headers
  html: string
}

export interface Form {
  action: URL
  method: string
  /** The hidden inputs, as the page filled them. */
  hidden: Record<string, string>
  /** Every input's name (hidden or not). */
  inputs: string[]
  buttons: Array<{ name: string | null; value: string | null; text: string }>
}

/** Where a navigation ended: on a page of the authorization server, or sent away to `url`. */
export type Stop = { page: Page; redirect?: undefined } | { redirect: URL; page?: undefined }

export interface Credentials {
  email: string
  password: string
}

/** What an authorization in the browser went through before it came back to the client. */
export interface Authorization {
  callback: URL
  signedIn: boolean
  consented: boolean
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decodeEntities (text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') return String.fromCodePoint(name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10))
    return ENTITIES[name.toLowerCase()] ?? whole
  })
}

function attributes (tag: string): Record<string, string> {
  const found: Record<string, string> = {}
  for (const match of tag.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    found[match[1]!.toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '')
  }
  return found
}

/** The forms of an HTML page, resolved against its URL. */
export function formsOf (page: Page): Form[] {
  const forms: Form[] = []
  for (const match of page.html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(match[1]!)
    const body = match[2]!
    const hidden: Record<string, string> = {}
    const inputs: string[] = []
    for (const input of body.matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]!)
      if (!a.name) continue
      inputs.push(a.name)
      if ((a.type ?? '').toLowerCase() === 'hidden') hidden[a.name] = a.value ?? ''
    }
    const buttons = [...body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((button) => {
      const a = attributes(button[1]!)
      return { name: a.name ?? null, value: a.value ?? null, text: decodeEntities(button[2]!.replace(/<[^>]*>/g, '')).trim() }
    })
    forms.push({ action: new URL(attrs.action ?? page.url.href, page.url), method: (attrs.method ?? 'get').toLowerCase(), hidden, inputs, buttons })
  }
  return forms
}

/** The form of `page` that posts to `path`, or undefined. */
export function formTo (page: Page, path: string): Form | undefined {
  return formsOf(page).find((form) => form.action.pathname === path)
}

/** The visible text of a page, tags removed, whitespace collapsed. */
export function textOf (page: Page): string {
  return decodeEntities(page.html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim()
}

export class UserAgent {
  private readonly jar = new Map<string, string>()
  readonly origin: string

  constructor (issuer: string) {
    this.origin = new URL(issuer).origin
  }

  /** The value of cookie `name`, or undefined. */
  cookie (name: string): string | undefined {
    return this.jar.get(name)
  }

  cookieNames (): string[] {
    return [...this.jar.keys()]
  }

  /** One request to the authorization server, cookies sent and kept, redirects not followed. */
  async request (url: URL | string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url)
    if (target.origin !== this.origin) throw new Error(`the user agent only talks to the authorization server, not ${target.href}`)
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers }
    if (this.jar.size > 0) headers.cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ')
    let body: string | undefined
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      headers.origin ??= this.origin
      body = new URLSearchParams(init.form).toString()
    }
    const response = await fetch(target, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, redirect: 'manual', ...(body === undefined ? {} : { body }) })
    for (const setCookie of response.headers.getSetCookie()) this.store(setCookie)
    return response
  }

  private store (setCookie: string): void {
    const [pair, ...attrs] = setCookie.split(';')
    const at = pair!.indexOf('=')
    if (at < 1) return
    const name = pair!.slice(0, at).trim()
    const value = pair!.slice(at + 1).trim()
    const expired = attrs.some((attr) => {
      const [key, val = ''] = attr.split('=').map((part) => part.trim())
      if (key!.toLowerCase() === 'max-age') return Number(val) <= 0
      if (key!.toLowerCase() === 'expires') return Date.parse(val) <= Date.now()
      return false
    })
    if (expired || value === '') this.jar.delete(name)
    else this.jar.set(name, value)
  }

  /**
   * Requests `url` and follows the authorization server's redirects; stops
   * on a page, or at a redirect that leaves the authorization server.
   */
  async navigate (url: URL | string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Stop> {
    let current = new URL(url)
    let response = await this.request(current, init)
    for (let hops = 0; hops < 10; hops++) {
      if (response.status < 300 || response.status >= 400) {
        return { page: { status: response.status, url: current, headers: response.headers, html: await response.text() } }
      }
      const location = response.headers.get('location')
      if (!location) throw new Error(`${response.status} without a Location from ${current.href}`)
      await response.body?.cancel()
      const next = new URL(location, current)
      if (next.origin !== this.origin) return { redirect: next }
      current = next
      response = await this.request(current)
    }
    throw new Error(`more than 10 redirects from ${new URL(url).href}`)
  }

  /** Submits `form` with the page's hidden fields, `fields`, and `button` (name and value) when given. */
  submit (form: Form, fields: Record<string, string> = {}, button?: { name: string | null; value: string | null }): Promise<Stop> {
    const data = { ...form.hidden, ...fields, ...(button?.name ? { [button.name]: button.value ?? '' } : {}) }
    if (form.method === 'get') {
      const target = new URL(form.action)
      for (const [name, value] of Object.entries(data)) target.searchParams.set(name, value)
      return this.navigate(target)
    }
    return this.navigate(form.action, { form: data })
  }

  /**
   * Opens an authorization request and goes through what the server shows:
   * the sign-in page (with `user`) and the consent page (allowed), until the
   * server redirects back to the client. Throws on any other page.
   */
  async authorize (url: URL | string, user: Credentials | null, options: { consent?: 'allow' | 'deny' } = {}): Promise<Authorization> {
    let stop = await this.navigate(url)
    let signedIn = false
    let consented = false
    for (let step = 0; step < 5; step++) {
      if (stop.redirect) return { callback: stop.redirect, signedIn, consented }
      const page = stop.page
      const signIn = formTo(page, '/oauth/sign-in')
      const consent = formTo(page, '/oauth/consent')
      if (signIn && user && !signedIn) {
        signedIn = true
        stop = await this.submit(signIn, { email: user.email, password: user.password })
      } else if (consent && !consented) {
        consented = true
        const decision = options.consent ?? 'allow'
        const button = consent.buttons.find((b) => b.name === 'decision' && b.value === decision)
        if (!button) throw new Error(`consent page without a ${decision} button: ${textOf(page).slice(0, 300)}`)
        stop = await this.submit(consent, {}, button)
      } else {
        throw new Error(`unexpected page (${page.status} ${page.url.pathname}): ${textOf(page).slice(0, 400)}`)
      }
    }
    throw new Error('the authorization did not come back to the client')
  }
}
