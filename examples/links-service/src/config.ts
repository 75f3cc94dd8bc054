import type { ResourceServerOptions, SecurityEventsOptions } from '../../../src/resource-server/index.js'

export interface LinksConfig {
  port: number
  host: string
  databaseUrl: string
  /** pg pool size (1 for an embedded PGlite, which serves one connection at a time). */
  databasePoolMax: number
  /** The auth service's issuer URL (its ISSUER). */
  issuer: string
  /** The `aud` this service accepts (the auth service's ACCESS_TOKEN_AUDIENCE). */
  audience: string
  /** An API key of the auth service with the `introspect` scope (created by an admin). */
  introspectionKey: string
  /**
   * An API key of the auth service with the `events` scope (an admin's; by
   * default the introspection key, which then holds both): the service's
   * security-event stream, through which revoked sessions are refused within
   * a second on every route.
   */
  eventsKey?: string
  /** Base of the short URLs this service hands out. */
  publicBaseUrl: string
  logLevel: string
  /** Further options of the resource-server plugin (cache TTLs, timeouts, realm, the stream's staleness). */
  auth?: Partial<Omit<ResourceServerOptions, 'issuer' | 'audience' | 'events'>> & { events?: Partial<SecurityEventsOptions> }
}

export class LinksConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'LinksConfigError'
  }
}

/**
 * The configuration from environment variables: PORT (3100), HOST
 * (127.0.0.1), LINKS_DATABASE_URL, LINKS_DATABASE_POOL_MAX (10), AUTH_ISSUER,
 * LINKS_AUDIENCE, LINKS_INTROSPECTION_KEY, LINKS_EVENTS_KEY (default: the
 * introspection key), PUBLIC_BASE_URL (http://localhost:PORT), LOG_LEVEL (info).
 */
export function loadLinksConfig (env: NodeJS.ProcessEnv = process.env): LinksConfig {
  const problems: string[] = []
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name}: an integer from ${min} to ${max}, got "${raw}"`)
    return value
  }
  const required = (name: string, pattern: RegExp, what: string): string => {
    const value = env[name] ?? ''
    if (!pattern.test(value)) problems.push(`${name}: ${what}${value ? `, got "${name.endsWith('KEY') ? '[redacted]' : value}"` : ' is required'}`)
    return value
  }
  const port = integer('PORT', 3100, 0, 65535)
  const config: LinksConfig = {
    port,
    host: env.HOST || '127.0.0.1',
    databaseUrl: required('LINKS_DATABASE_URL', /^postgres(ql)?:\/\//, 'a postgresql:// URL'),
    databasePoolMax: integer('LINKS_DATABASE_POOL_MAX', 10, 1, 200),
    issuer: required('AUTH_ISSUER', /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, 'the auth service\'s issuer URL'),
    audience: required('LINKS_AUDIENCE', /^\S+$/, 'the audience of access tokens for this service'),
    introspectionKey: required('LINKS_INTROSPECTION_KEY', /^tak_[0-9A-Za-z]+$/, 'an API key with the introspect scope'),
    ...(env.LINKS_EVENTS_KEY ? { eventsKey: required('LINKS_EVENTS_KEY', /^tak_[0-9A-Za-z]+$/, 'an API key with the events scope') } : {}),
    publicBaseUrl: (env.PUBLIC_BASE_URL || `http://localhost:${port}`).replace(/\/$/, ''),
    logLevel: env.LOG_LEVEL || 'info',
  }
  if (problems.length > 0) throw new LinksConfigError(problems)
  return config
}
