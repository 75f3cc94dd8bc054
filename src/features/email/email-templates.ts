import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../paths.js'

/**
 * The messages the service sends, one plain-text and one HTML file each under
 * src/templates/email/. The text file's first line is `Subject: …`. Values
 * are interpolated as {{name}}; in the HTML every value is escaped, so an
 * address or a product name can never add markup.
 */
export const EMAIL_TEMPLATES = [
  'password_reset',
  'password_changed',
  'email_verification',
  'email_change',
  'email_change_requested',
  'second_factors_reset',
  'password_changed_review',
  'credential_added',
  'webhook_disabled',
] as const
export type EmailTemplate = (typeof EMAIL_TEMPLATES)[number]

/** The templates whose message carries a secret, and the page its link opens. */
export const LINK_PAGES = {
  password_reset: 'passwordReset',
  email_verification: 'emailVerify',
  email_change: 'emailVerify',
  password_changed_review: 'credentialRemoval',
} as const satisfies Partial<Record<EmailTemplate, LinkPage>>
export type LinkPage = 'passwordReset' | 'emailVerify' | 'credentialRemoval'

export const TEMPLATES_DIR = join(PROJECT_ROOT, 'src', 'templates', 'email')

export interface RenderedEmail {
  subject: string
  text: string
  html: string
}

interface Template {
  subject: string
  text: string
  html: string
}

const PLACEHOLDER = /\{\{([A-Za-z]+)\}\}/g

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!)
}

function fill (template: string, values: Record<string, string>, escape: (value: string) => string, name: string): string {
  return template.replace(PLACEHOLDER, (_, key: string) => {
    const value = values[key]
    // A typo in a template must fail loudly, not send "{{lnik}}" to users.
    if (value === undefined) throw new Error(`email template ${name} uses {{${key}}}, which was not given`)
    return escape(value)
  })
}

export class EmailTemplates {
  private readonly templates = new Map<EmailTemplate, Template>()

  /** Reads every template at once: a missing or malformed file stops the start, not a delivery. */
  constructor (dir: string = TEMPLATES_DIR) {
    for (const name of EMAIL_TEMPLATES) {
      const textFile = readFileSync(join(dir, `${name}.txt`), 'utf8')
      const match = /^Subject: ([^\r\n]+)\r?\n\r?\n/.exec(textFile)
      if (!match) throw new Error(`email template ${name}.txt must start with a "Subject: …" line and a blank line`)
      this.templates.set(name, { subject: match[1]!, text: textFile.slice(match[0].length), html: readFileSync(join(dir, `${name}.html`), 'utf8') })
    }
  }

  render (name: EmailTemplate, values: Record<string, string>): RenderedEmail {
    const template = this.templates.get(name)
    if (!template) throw new Error(`unknown email template ${name}`)
    // Header values: no line breaks, whatever a value holds (header injection).
    const subject = fill(template.subject, values, (value) => value.replace(/[\r\n]+/g, ' '), name)
    return { subject, text: fill(template.text, values, (value) => value, name), html: fill(template.html, values, escapeHtml, name) }
  }
}

/**
 * A link to a page of the SPA with the secret in the URL's fragment: a
 * browser never sends the fragment to any server, so the secret stays out of
 * server and proxy logs and out of the Referer of whatever the page loads.
 * A page URL that already has a fragment (the dashboard's hash routes) gets
 * the token as a parameter of it.
 */
export function secretLink (pageUrl: string, secret: string): string {
  const hash = pageUrl.indexOf('#')
  const token = `token=${encodeURIComponent(secret)}`
  if (hash === -1) return `${pageUrl}#${token}`
  return `${pageUrl}${pageUrl.slice(hash).includes('?') ? '&' : '?'}${token}`
}
