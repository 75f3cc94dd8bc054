import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type CryptoKey,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JSONWebKeySet,
  type RemoteJWKSet,
} from 'jose'
import { IssuerUnavailableError } from './errors.js'

type LocalSet = ReturnType<typeof createLocalJWKSet>

export interface JwksOptions {
  /** Resolves the JWKS URL (from discovery); called until it succeeds. */
  jwksUri: () => Promise<string>
  cacheMaxAgeMs: number
  cooldownMs: number
  failureBackoffMs: number
  timeoutMs: number
  fetch: typeof fetch
}

/**
 * The issuer's signing keys, through jose's remote JWKS: cached for
 * `cacheMaxAgeMs`, refetched when a token names an unknown kid, but not
 * within `cooldownMs` of the last fetch, so a flood of made-up kids costs
 * the issuer at most one request per cool-down.
 *
 * Two additions for a service that must keep working while the issuer is
 * down: when a refetch fails, the keys last fetched keep verifying tokens
 * (stale-if-error: a signature check needs no issuer, and a retired key is
 * published long after its last token expired); and after a failure no
 * fetch is tried for `failureBackoffMs`, so a down issuer is not asked on
 * every request, nor does every request wait for a timeout.
 */
export class IssuerKeys {
  private remote: RemoteJWKSet | undefined
  private failedAt = -Infinity
  private stale: { json: string; local: LocalSet } | undefined
  /** Requests sent to the JWKS URL, for diagnostics and tests. */
  fetches = 0

  constructor (private readonly options: JwksOptions) {}

  /** A jose key-resolver function for jwtVerify. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    const remote = await this.remoteSet()
    try {
      return await remote(header, token)
    } catch (error) {
      // An unknown kid (after the refetch jose allows) is the token's fault.
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error
      // Anything else means the key set could not be (re)loaded.
      this.failedAt = Date.now()
      const local = this.staleSet(remote)
      if (!local) {
        throw error instanceof IssuerUnavailableError ? error : new IssuerUnavailableError('the issuer\'s keys could not be fetched', { cause: error })
      }
      return local(header, token)
    }
  }

  /** Fetches the keys now (start-up warm-up). */
  async load (): Promise<void> {
    await (await this.remoteSet()).reload()
  }

  private async remoteSet (): Promise<RemoteJWKSet> {
    if (this.remote) return this.remote
    const url = await this.options.jwksUri()
    this.remote ??= createRemoteJWKSet(new URL(url), {
      cacheMaxAge: this.options.cacheMaxAgeMs,
      cooldownDuration: this.options.cooldownMs,
      timeoutDuration: this.options.timeoutMs,
      [customFetch]: (input, init) => {
        if (Date.now() - this.failedAt < this.options.failureBackoffMs) {
          return Promise.reject(new IssuerUnavailableError('the JWKS fetch is backing off after a failure'))
        }
        this.fetches++
        return this.options.fetch(input, init)
      },
    })
    return this.remote
  }

  /** The keys last fetched, as a local set (rebuilt only when they changed). */
  private staleSet (remote: RemoteJWKSet): LocalSet | undefined {
    const jwks: JSONWebKeySet | undefined = remote.jwks()
    if (!jwks) return undefined
    const json = JSON.stringify(jwks)
    if (this.stale?.json !== json) this.stale = { json, local: createLocalJWKSet(jwks) }
    return this.stale.local
  }
}
