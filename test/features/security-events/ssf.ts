import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { json } from '../../helpers/app.js'
import { createApiKey, signupAdmin, type Account } from '../../helpers/users.js'

/**
 * Shared by the security-event tests: a receiver (an admin's API key with
 * the events scope), its streams and polls through app.inject, and SETs
 * verified as a receiver verifies them, with jose against the JWKS.
 */

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
export const POLL = 'urn:ietf:rfc:8936'
export const PUSH = 'urn:ietf:rfc:8935'

type App = FastifyInstance

export interface Receiver {
  admin: Account
  key: string
  headers: Record<string, string>
}

/** A new admin and an API key of theirs with the events scope (and introspect, as a service's key has). */
export async function adminReceiver (app: App, scopes: string[] = ['events']): Promise<Receiver> {
  const admin = await signupAdmin(app)
  const { key } = await createApiKey(app, admin.access_token, { name: 'ssf receiver', scopes })
  return { admin, key, headers: { authorization: `Bearer ${key}` } }
}

export interface StreamConfig {
  stream_id: string
  iss: string
  aud: string
  delivery: { method: string; endpoint_url: string }
  events_supported: string[]
  events_requested: string[]
  events_delivered: string[]
  description?: string
  min_verification_interval: number
  inactivity_timeout?: number
}

export async function createStream (app: App, receiver: Pick<Receiver, 'headers'>, body: Record<string, unknown> = { events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] }): Promise<StreamConfig> {
  const response = await app.inject({ method: 'POST', url: '/ssf/stream', headers: receiver.headers, payload: body })
  if (response.statusCode !== 201) throw new Error(`create stream: ${response.statusCode} ${response.body}`)
  return json<StreamConfig>(response)
}

export interface PollAnswer {
  sets: Record<string, string>
  moreAvailable?: boolean
}

export function pollRequest (app: App, receiver: Pick<Receiver, 'headers'>, streamId: string, body: Record<string, unknown> = { returnImmediately: true }): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: `/ssf/poll/${streamId}`, headers: receiver.headers, payload: body })
}

export async function poll (app: App, receiver: Pick<Receiver, 'headers'>, streamId: string, body: Record<string, unknown> = { returnImmediately: true }): Promise<PollAnswer> {
  const response = await pollRequest(app, receiver, streamId, body)
  if (response.statusCode !== 200) throw new Error(`poll: ${response.statusCode} ${response.body}`)
  return json<PollAnswer>(response)
}

export interface SetPayload extends JWTPayload {
  sub_id: Record<string, unknown>
  events: Record<string, Record<string, unknown>>
  txn?: string
}

/** Verifies a SET as a receiver does: the issuer's JWKS, ES256 only, typ secevent+jwt, iss, aud. */
export async function verifySet (app: App, set: string, audience: string): Promise<{ payload: SetPayload; header: Record<string, unknown> }> {
  const jwks = json<{ keys: JWK[] }>(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
  const { payload, protectedHeader } = await jwtVerify(set, createLocalJWKSet(jwks), {
    issuer: app.config.issuer,
    audience,
    algorithms: ['ES256'],
    typ: 'secevent+jwt',
  })
  return { payload: payload as SetPayload, header: protectedHeader as Record<string, unknown> }
}

/** Every SET due on the stream now, verified, acknowledged; in the order the poll answered them. */
export async function drain (app: App, receiver: Pick<Receiver, 'headers'>, stream: Pick<StreamConfig, 'stream_id' | 'aud'>): Promise<SetPayload[]> {
  const out: SetPayload[] = []
  let ack: string[] = []
  for (;;) {
    const answer = await poll(app, receiver, stream.stream_id, { ack, returnImmediately: true, maxEvents: 100 })
    const entries = Object.entries(answer.sets)
    for (const [, set] of entries) out.push((await verifySet(app, set, stream.aud)).payload)
    ack = entries.map(([jti]) => jti)
    if (entries.length === 0) return out
  }
}

/** The session ids of the session-revoked events among `sets`. */
export const revokedSessions = (sets: SetPayload[]): string[] =>
  sets.filter((set) => SESSION_REVOKED in set.events).map((set) => (set.sub_id.session as { id: string }).id)

export interface ServiceClient {
  clientId: string
  clientSecret: string
}

/** A confidential client registered for client_credentials with the events scope (as a platform service is). */
export async function serviceClient (app: App, adminAccessToken: string, scope = 'events'): Promise<ServiceClient> {
  const response = await app.inject({
    method: 'POST',
    url: '/admin/clients',
    headers: { authorization: `Bearer ${adminAccessToken}` },
    payload: { client_name: 'Events receiver', redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope },
  })
  if (response.statusCode !== 201) throw new Error(`register client: ${response.statusCode} ${response.body}`)
  const body = json<{ client_id: string; client_secret: string }>(response)
  return { clientId: body.client_id, clientSecret: body.client_secret }
}

/** A client_credentials access token of the client. */
export async function clientToken (app: App, client: ServiceClient, scope?: string): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`,
    },
    payload: new URLSearchParams({ grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) }).toString(),
  })
  if (response.statusCode !== 200) throw new Error(`client token: ${response.statusCode} ${response.body}`)
  return json<{ access_token: string }>(response).access_token
}

/**
 * A fetch that answers from `app.inject` (no socket): for a resource server
 * pointed at a test app that does not listen. Honours the request's signal.
 */
export function injectFetch (app: App): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer())
    const headers: Record<string, string> = {}
    request.headers.forEach((value, name) => {
      headers[name] = value
    })
    const answer = app.inject({ method: request.method as 'GET', url: url.pathname + url.search, headers, ...(body === undefined ? {} : { payload: body }) })
    const signal = init?.signal
    const response = await (signal
      ? Promise.race([answer, new Promise<never>((_resolve, reject) => {
        if (signal.aborted) reject(signal.reason)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })])
      : answer)
    const responseHeaders = new Headers()
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : String(value))
    }
    return new Response(response.statusCode === 204 || response.statusCode === 304 ? null : response.rawPayload, { status: response.statusCode, headers: responseHeaders })
  }
}
