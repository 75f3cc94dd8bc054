import type { FastifyReply } from 'fastify'

/**
 * The hosted pages' headers: never framed (clickjacking of the consent and
 * sign-in forms), never cached, nothing loaded from elsewhere. Chromium
 * applies `form-action` to the redirect that follows a posted form (DESIGN
 * §3.15), so the policy also names where the flow's forms end: the client's
 * redirect URI (its origin, or its private-use scheme). Referrer-Policy is
 * same-origin, not no-referrer: under no-referrer a browser sends `Origin:
 * null` even on a form posted to the page's own origin (Fetch's "append a
 * request Origin header"), which the forms' CSRF check refuses; same-origin
 * still sends nothing to the client's site.
 */
export function sendPage (reply: FastifyReply, html: string, options: { status?: number; formTargets?: string[] } = {}) {
  const targets = (options.formTargets ?? []).map(formActionSource).filter((source): source is string => source !== null)
  const csp = [
    "default-src 'none'",
    "style-src 'self'",
    "script-src 'self'",
    "img-src 'self' https:",
    "connect-src 'self'",
    `form-action 'self'${targets.map((source) => ` ${source}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
  return reply
    .code(options.status ?? 200)
    .header('content-security-policy', csp)
    .header('x-frame-options', 'DENY')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'same-origin')
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(html)
}

/** A CSP source for a redirect URI: its origin, or `scheme:` for a private-use scheme; null for anything a policy cannot name safely. */
function formActionSource (uri: string): string | null {
  try {
    const url = new URL(uri)
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.origin
    return /^[a-z][a-z0-9+.-]*:$/.test(url.protocol) ? url.protocol : null
  } catch {
    return null
  }
}
