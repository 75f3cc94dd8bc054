import { DomainError } from '../../../errors.js'

/** Checks a requested scope against what may be granted; the granted scope string, or invalid_scope (RFC 6749 §3.3). */
export function grantedScope (requested: string | undefined, allowed: string[]): string {
  if (requested === undefined || requested.trim() === '') return [...new Set(allowed)].join(' ')
  const scopes = [...new Set(requested.trim().split(/\s+/))]
  const refused = scopes.filter((s) => !allowed.includes(s))
  if (refused.length > 0) throw new DomainError('invalid_scope', `scope not allowed: ${refused.join(' ')}`)
  return scopes.join(' ')
}
