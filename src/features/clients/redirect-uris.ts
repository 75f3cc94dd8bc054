/**
 * Redirect URIs (RFC 9700 §4.1.3, OAuth 2.1 §2.3.1, RFC 8252 §7): compared
 * as whole strings, with one exception: a native client's loopback URI
 * (`http://127.0.0.1/…` or `http://[::1]/…`) matches on any port, since the
 * app gets its port from the system at the time of the request (RFC 8252
 * §7.3). No wildcard, no prefix, no normalisation: what is registered is what
 * must come back.
 */

export type ApplicationType = 'web' | 'native'

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]'])
/** A private-use URI scheme (RFC 8252 §7.1): reverse domain name, so it contains a dot. */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$/

/** Why `uri` cannot be registered for a client of this type, or null. */
export function redirectUriProblem (uri: string, applicationType: ApplicationType): string | null {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return `${uri} is not an absolute URI`
  }
  if (url.hash !== '' || uri.includes('#')) return `${uri} has a fragment (RFC 6749 §3.1.2)`
  if (url.username !== '' || url.password !== '') return `${uri} carries user information`
  if (uri.includes('*')) return `${uri} has a wildcard; redirect URIs are matched exactly`
  const scheme = url.protocol.slice(0, -1)
  if (scheme === 'https') return null
  if (scheme === 'http') {
    if (LOOPBACK_HOSTS.has(url.hostname) || url.hostname === 'localhost') return null
    return `${uri}: http is allowed only on the loopback interface`
  }
  if (applicationType === 'native' && PRIVATE_USE_SCHEME.test(scheme)) return null
  return applicationType === 'native'
    ? `${uri}: a native client's scheme must be https, loopback http or a reverse-domain private-use scheme (RFC 8252 §7.1)`
    : `${uri}: a web client's redirect URI must be https (or http on the loopback interface)`
}

/** Whether `presented` is one of `registered`, exactly, or a native client's loopback URI on another port. */
export function matchesRedirectUri (registered: readonly string[], presented: string, applicationType: ApplicationType): boolean {
  if (registered.includes(presented)) return true
  if (applicationType !== 'native') return false
  const loopback = withoutPort(presented)
  return loopback !== null && registered.some((uri) => withoutPort(uri) === loopback)
}

/** A loopback http URI with its port removed, or null for any other URI. */
function withoutPort (uri: string): string | null {
  const match = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?(\/[^#]*)?$/.exec(uri)
  // A port a socket can have (1-65535), or none: anything else is no loopback URI at all.
  if (!match || (match[2] !== undefined && (Number(match[2]) < 1 || Number(match[2]) > 65535))) return null
  return `http://${match[1]}${match[3] ?? '/'}`
}
