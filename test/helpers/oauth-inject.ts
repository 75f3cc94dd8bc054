import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { PageBrowser } from './oauth.js'

/**
 * PageBrowser (test/helpers/oauth.ts) for a service that does not listen:
 * the same cookie jar, forms and Origin, over fastify.inject, so
 * followAuthorization drives the hosted pages of a test app whose ISSUER
 * (http://auth.test) names no real host. Only this service's origin is
 * reachable; the client's redirect URIs are where a flow stops.
 */
export class InjectedPageBrowser extends PageBrowser {
  constructor (readonly app: FastifyInstance, issuer: string = app.config.issuer) {
    super(issuer)
  }

  override get (url: string): Promise<Response> {
    return this.send({ method: 'GET', url })
  }

  /** A form POST as a browser sends it; `origin` null sends none (an old browser, a privacy extension). */
  override post (path: string, fields: Record<string, string>, origin: string | null = new URL(this.issuer).origin): Promise<Response> {
    return this.send({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin === null ? {} : { origin }) },
      payload: new URLSearchParams(fields).toString(),
    })
  }

  private async send (request: { method: 'GET' | 'POST'; url: string; headers?: Record<string, string>; payload?: string }): Promise<Response> {
    const target = new URL(request.url, this.issuer)
    if (target.origin !== new URL(this.issuer).origin) throw new Error(`${target.href} is not this service's: the flow left for the client`)
    const cookie = this.cookieHeader()
    const answer = await this.app.inject({
      method: request.method,
      url: target.pathname + target.search,
      headers: { ...request.headers, ...(cookie ? { cookie } : {}) },
      ...(request.payload === undefined ? {} : { payload: request.payload }),
    })
    this.keepCookies(answer)
    return asFetchResponse(answer)
  }

  private keepCookies (answer: LightMyRequestResponse): void {
    for (const cookie of answer.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      const expired = cookie.value === '' || cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= 0)
      if (expired) this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
  }
}

/** An injected answer as fetch would have given it (redirect: manual). */
export function asFetchResponse (answer: LightMyRequestResponse): Response {
  const headers = new Headers()
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, String(one))
  }
  const noBody = [204, 205, 304].includes(answer.statusCode)
  return new Response(noBody ? null : answer.body, { status: answer.statusCode, headers })
}
