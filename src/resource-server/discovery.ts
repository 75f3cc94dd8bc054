import { IssuerUnavailableError } from './errors.js'
import { fetchJson } from './http.js'

export interface IssuerEndpoints {
  jwksUri: string
  introspectionEndpoint: string | undefined
}

/** RFC 8414 §3.1: the metadata URL of an issuer, the well-known segment inserted before any path. */
export function metadataUrl (issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')
  return `${url.origin}/.well-known/oauth-authorization-server${path}`
}

/**
 * The issuer's JWKS and introspection URLs: from the options when given, else
 * from its RFC 8414 metadata, fetched once (concurrent callers share the
 * request) and kept; a failed fetch is retried at most once per backoff.
 */
export class IssuerDiscovery {
  private endpoints: IssuerEndpoints | undefined
  private pending: Promise<IssuerEndpoints> | undefined
  private failedAt = -Infinity
  private lastError: Error | undefined

  constructor (
    private readonly options: {
      issuer: string
      overrides: { jwksUri?: string | undefined; introspectionEndpoint?: string | undefined }
      /** Whether the introspection endpoint is needed at all (API keys or sensitive routes). */
      needsIntrospection: boolean
      fetch: typeof fetch
      timeoutMs: number
      backoffMs: number
    }
  ) {
    const { jwksUri, introspectionEndpoint } = options.overrides
    if (jwksUri !== undefined && (introspectionEndpoint !== undefined || !options.needsIntrospection)) {
      this.endpoints = { jwksUri, introspectionEndpoint }
    }
  }

  async get (): Promise<IssuerEndpoints> {
    if (this.endpoints) return this.endpoints
    if (this.pending) return this.pending
    if (Date.now() - this.failedAt < this.options.backoffMs && this.lastError) throw this.lastError
    this.pending = this.discover().then(
      (endpoints) => {
        this.endpoints = endpoints
        this.pending = undefined
        return endpoints
      },
      (error: Error) => {
        this.failedAt = Date.now()
        this.lastError = error
        this.pending = undefined
        throw error
      }
    )
    return this.pending
  }

  private async discover (): Promise<IssuerEndpoints> {
    const url = metadataUrl(this.options.issuer)
    const { status, body } = await fetchJson(this.options.fetch, url, { timeoutMs: this.options.timeoutMs })
    if (status !== 200 || typeof body !== 'object' || body === null) {
      throw new IssuerUnavailableError(`${url}: answered ${status}`)
    }
    const metadata = body as Record<string, unknown>
    // RFC 8414 §3.3: the metadata must name the issuer it was fetched for, or it is not to be used.
    if (metadata.issuer !== this.options.issuer) {
      throw new IssuerUnavailableError(`${url}: names issuer ${JSON.stringify(metadata.issuer)}, not ${this.options.issuer}`)
    }
    const jwksUri = this.options.overrides.jwksUri ?? httpUrl(metadata.jwks_uri)
    if (!jwksUri) throw new IssuerUnavailableError(`${url}: no usable jwks_uri`)
    const introspectionEndpoint = this.options.overrides.introspectionEndpoint ?? httpUrl(metadata.introspection_endpoint)
    return { jwksUri, introspectionEndpoint }
  }
}

function httpUrl (value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined
  } catch {
    return undefined
  }
}
