import { KeyObject, randomUUID, sign as cryptoSign } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import resourceServerPlugin, { type ResourceServerOptions } from '../../src/resource-server/index.js'

/**
 * A stand-in issuer for the resource-server plugin's unit tests: RFC 8414
 * metadata, a JWKS whose keys the test controls, and an introspection
 * endpoint whose answers the test scripts. Counts every request.
 */
export interface SigningKey {
  kid: string
  alg: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function newKey (alg: 'ES256' | 'ES384' | 'EdDSA' | 'RS256' = 'ES256', kid: string = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, publicJwk }
}

export type IntrospectionHandler = (token: string, request: { authorization: string | undefined; body: URLSearchParams }) =>
  | { status?: number; body: unknown }
  | Promise<{ status?: number; body: unknown }>

export class FakeIssuer {
  issuer = ''
  audience = 'https://api.resource.test'
  published: SigningKey[] = []
  /** 'up': answers; 'error': JWKS and metadata answer 500; 'hang': never answers. */
  mode: 'up' | 'error' | 'hang' = 'up'
  counts = { metadata: 0, jwks: 0, introspection: 0 }
  /** The issuer the metadata names; a different one tests RFC 8414 §3.3. */
  metadataIssuer: string | undefined
  introspection: IntrospectionHandler = () => ({ body: { active: false } })
  lastIntrospection: { authorization: string | undefined; body: URLSearchParams } | undefined
  private server: Server | undefined
  private hanging: ServerResponse[] = []

  async start (): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req, res)
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  async stop (): Promise<void> {
    for (const res of this.hanging) res.destroy()
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    this.server = undefined
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    if (path === '/.well-known/oauth-authorization-server') this.counts.metadata++
    else if (path === '/.well-known/jwks.json') this.counts.jwks++
    else if (path === '/auth/introspect') this.counts.introspection++
    if (this.mode === 'hang') {
      this.hanging.push(res)
      return
    }
    if (this.mode === 'error' && path !== '/auth/introspect') return send(500, { error: 'down' })
    if (path === '/.well-known/oauth-authorization-server') {
      return send(200, {
        issuer: this.metadataIssuer ?? this.issuer,
        jwks_uri: `${this.issuer}/.well-known/jwks.json`,
        introspection_endpoint: `${this.issuer}/auth/introspect`,
        token_endpoint: `${this.issuer}/auth/token`,
      })
    }
    if (path === '/.well-known/jwks.json') return send(200, { keys: this.published.map((k) => k.publicJwk) })
    if (path === '/auth/introspect' && req.method === 'POST') {
      let raw = ''
      for await (const chunk of req) raw += String(chunk)
      const body = new URLSearchParams(raw)
      const seen = { authorization: req.headers.authorization, body }
      this.lastIntrospection = seen
      const answer = await this.introspection(body.get('token') ?? '', seen)
      return send(answer.status ?? 200, answer.body)
    }
    send(404, { error: 'not_found' })
  }

  /** Claims of a valid access token of this issuer, overridable. */
  claims (overrides: JWTPayload = {}): JWTPayload {
    const now = Math.floor(Date.now() / 1000)
    return {
      iss: this.issuer,
      aud: this.audience,
      sub: 'user-1',
      client_id: 'web',
      sid: 'session-1',
      jti: randomUUID(),
      iat: now,
      exp: now + 600,
      scope: 'profile links:read',
      role: 'user',
      ...overrides,
    }
  }

  /** Signs claims with a key (the first published one by default). */
  async sign (
    overrides: JWTPayload = {},
    options: { key?: SigningKey; header?: Record<string, unknown>; omit?: string[] } = {}
  ): Promise<string> {
    const key = options.key ?? this.published[0]!
    const claims: Record<string, unknown> = this.claims(overrides)
    for (const name of options.omit ?? []) delete claims[name]
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...options.header } as { alg: string })
      .sign(key.privateKey)
  }
}

/**
 * A Fastify app with the plugin pointed at the fake issuer, and a few routes:
 * GET /read (links:read), GET /any (no scope), GET /keys (API keys with
 * links:read), POST /keys (API keys with links:write), DELETE /sensitive
 * (sensitive, API keys allowed). Each answers with request.auth.
 */
export async function resourceApp (
  issuer: FakeIssuer,
  options: Partial<ResourceServerOptions> = {}
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(resourceServerPlugin, {
    issuer: issuer.issuer,
    audience: issuer.audience,
    realm: 'links',
    introspection: { credential: 'tak_introspector' },
    ...options,
  })
  app.get('/read', { preHandler: app.requireAuth({ scopes: ['links:read'] }) }, async (request) => request.auth)
  app.get('/any', { preHandler: app.requireAuth() }, async (request) => request.auth)
  app.get('/keys', { preHandler: app.requireAuth({ scopes: ['links:read'], allowApiKeys: true }) }, async (request) => request.auth)
  app.post('/keys', { preHandler: app.requireAuth({ scopes: ['links:write'], allowApiKeys: true }) }, async (request) => request.auth)
  app.delete('/sensitive', { preHandler: app.requireAuth({ sensitive: true, allowApiKeys: true }) }, async (request) => request.auth)
  await app.ready()
  return app
}

/** Signs an ES256 JWS by hand, for headers jose refuses to produce (an unknown crit). */
export function rawSignES256 (header: Record<string, unknown>, claims: JWTPayload, key: SigningKey): string {
  const input = `${base64url.encode(JSON.stringify({ alg: 'ES256', kid: key.kid, ...header }))}.${base64url.encode(JSON.stringify(claims))}`
  const signature = cryptoSign('sha256', Buffer.from(input), { key: KeyObject.from(key.privateKey), dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
