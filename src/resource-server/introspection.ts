import { createHash } from 'node:crypto'
import { BoundedCache } from './bounded-cache.js'
import { IssuerUnavailableError } from './errors.js'
import { fetchJson } from './http.js'
import type { IntrospectionAnswer } from './types.js'

export interface IntrospectorOptions {
  /** Resolves the introspection endpoint (from discovery). */
  endpoint: () => Promise<string>
  /** The caller's credential: an API key holding the introspect scope. */
  credential: string
  positiveTtlMs: number
  negativeTtlMs: number
  maxEntries: number
  timeoutMs: number
  fetch: typeof fetch
  now: () => number
}

interface Entry {
  answer: IntrospectionAnswer
  checkedAt: number
}

/** The cache key of a token: its SHA-256, so no credential is kept in memory maps. */
export function tokenDigest (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * An RFC 7662 client with a short cache: an active answer is reused for at
 * most the `maxAgeMs` the caller allows (positive TTL for API keys, a shorter
 * one for sensitive routes) and never past the token's exp; an inactive
 * answer for `negativeTtlMs`, so a flood of bad keys does not reach the
 * issuer, while a key created a moment ago works within seconds. Concurrent
 * questions about one token share one request. Failures are not cached.
 */
export class Introspector {
  private readonly cache: BoundedCache<Entry>
  private readonly inFlight = new Map<string, Promise<Entry>>()
  /** Requests sent to the endpoint, for diagnostics and tests. */
  requests = 0

  constructor (private readonly options: IntrospectorOptions) {
    this.cache = new BoundedCache(options.maxEntries)
  }

  /** Cache keys (digests), for tests that check no raw token is kept. */
  cachedKeys (): string[] {
    return this.cache.keys()
  }

  async introspect (token: string, options: { maxAgeMs: number; hint?: string }): Promise<IntrospectionAnswer> {
    const key = tokenDigest(token)
    const cached = this.cache.get(key)
    if (cached && this.usable(cached, options.maxAgeMs)) return cached.answer
    let pending = this.inFlight.get(key)
    if (!pending) {
      pending = this.ask(token, options.hint).finally(() => this.inFlight.delete(key))
      this.inFlight.set(key, pending)
    }
    const entry = await pending
    this.cache.set(key, entry)
    return entry.answer
  }

  private usable (entry: Entry, maxAgeMs: number): boolean {
    const now = this.options.now()
    const age = now - entry.checkedAt
    if (age < 0) return false
    if (!entry.answer.active) return age < this.options.negativeTtlMs
    if (entry.answer.exp !== undefined && entry.answer.exp * 1000 <= now) return false
    return age < maxAgeMs
  }

  private async ask (token: string, hint: string | undefined): Promise<Entry> {
    const endpoint = await this.options.endpoint()
    const body = new URLSearchParams({ token, ...(hint ? { token_type_hint: hint } : {}) })
    const checkedAt = this.options.now()
    this.requests++
    const { status, body: answer } = await fetchJson(this.options.fetch, endpoint, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${this.options.credential}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: body.toString(),
      timeoutMs: this.options.timeoutMs,
    })
    if (status === 401 || status === 403) {
      throw new IssuerUnavailableError(`introspection refused this service's credential (${status}): check its introspect-scoped API key`)
    }
    if (status !== 200) throw new IssuerUnavailableError(`introspection answered ${status}`)
    return { answer: parseAnswer(answer), checkedAt }
  }
}

/** Reads an RFC 7662 response strictly: anything odd counts as inactive. */
export function parseAnswer (body: unknown): IntrospectionAnswer {
  if (typeof body !== 'object' || body === null) throw new IssuerUnavailableError('introspection answered a non-object')
  const b = body as Record<string, unknown>
  if (b.active !== true) return { active: false }
  const answer: IntrospectionAnswer = { active: true }
  if (typeof b.token_type === 'string') answer.token_type = b.token_type
  if (typeof b.sub === 'string') answer.sub = b.sub
  if (typeof b.scope === 'string') answer.scope = b.scope
  if (typeof b.exp === 'number') answer.exp = b.exp
  if (typeof b.sid === 'string') answer.sid = b.sid
  if (typeof b.client_id === 'string') answer.client_id = b.client_id
  return answer
}
