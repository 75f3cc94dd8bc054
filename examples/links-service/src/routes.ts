import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import type { ResourceAuth } from '../../../src/resource-server/index.js'
import { InvalidCursorError, type Link, type LinkStore } from './links.js'

/** An error the app answers with `{statusCode, error, message}`. */
export class LinksError extends Error {
  constructor (
    readonly statusCode: number,
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'LinksError'
  }
}

export const READ = 'links:read'
export const WRITE = 'links:write'

const LinkSchema = Type.Object({
  code: Type.String(),
  url: Type.String(),
  shortUrl: Type.String(),
  ownerId: Type.String(),
  createdVia: Type.Union([Type.Literal('user'), Type.Literal('api_key')]),
  createdAt: Type.String({ format: 'date-time' }),
})

const ErrorSchema = Type.Object({ statusCode: Type.Integer(), error: Type.String(), message: Type.String() })
const errors = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, ErrorSchema]))

const CodeParams = Type.Object({ code: Type.String({ minLength: 1, maxLength: 32 }) })

/** The target of a link: an absolute http(s) URL without credentials, at most 2048 characters. */
export function normalizeTargetUrl (input: string): string {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new LinksError(400, 'invalid_url', 'url must be an absolute http or https URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LinksError(400, 'invalid_url', 'url must be an absolute http or https URL')
  }
  if (url.username || url.password) throw new LinksError(400, 'invalid_url', 'url must not carry credentials')
  if (url.href.length > 2048) throw new LinksError(400, 'invalid_url', 'url is longer than 2048 characters')
  return url.href
}

/** An admin acting through their own access token (API keys never carry admin rights here). */
function isAdmin (auth: ResourceAuth): boolean {
  return auth.kind === 'user' && auth.role === 'admin'
}

function authOf (request: FastifyRequest): ResourceAuth {
  if (!request.auth) throw new Error('route without requireAuth')
  return request.auth
}

/**
 * The links API. Users act on their own links with access tokens; API keys
 * act for their owner (links:read to read, links:write to create and
 * delete); an admin's access token may list and delete everyone's, after the
 * issuer confirms (introspection) that the admin's session and role are
 * current. Resolving a code is public.
 */
export function linksRoutes (store: LinkStore, publicBaseUrl: string): FastifyPluginAsyncTypebox {
  const present = (link: Link) => ({
    code: link.code,
    url: link.url,
    shortUrl: `${publicBaseUrl}/${link.code}`,
    ownerId: link.ownerId,
    createdVia: link.createdVia,
    createdAt: link.createdAt.toISOString(),
  })

  return async (fastify) => {
    fastify.post(
      '/links',
      {
        preHandler: fastify.requireAuth({ scopes: [WRITE], allowApiKeys: true }),
        schema: {
          body: Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
          response: { 201: LinkSchema, ...errors(400, 401, 403, 503) },
        },
      },
      async (request, reply) => {
        const auth = authOf(request)
        const link = await store.create({ url: normalizeTargetUrl(request.body.url), ownerId: auth.userId, createdVia: auth.kind })
        return reply.code(201).send(present(link))
      }
    )

    fastify.get(
      '/links',
      {
        preHandler: fastify.requireAuth({ scopes: [READ], allowApiKeys: true }),
        schema: {
          querystring: Type.Object(
            {
              all: Type.Optional(Type.Boolean({ description: 'admins: everyone\'s links' })),
              limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false }
          ),
          response: { 200: Type.Object({ items: Type.Array(LinkSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors(400, 401, 403, 503) },
        },
      },
      async (request) => {
        const auth = authOf(request)
        const { all, limit, cursor } = request.query
        if (all) {
          if (!isAdmin(auth)) throw new LinksError(403, 'forbidden', 'only admins may list everyone\'s links')
          // Everyone's links: the token's role claim is not enough; ask the issuer that it still holds.
          await fastify.resourceServer.authenticate(request, { scopes: [READ], sensitive: true })
        }
        try {
          const page = await store.list({ ownerId: all ? null : auth.userId, limit, ...(cursor ? { cursor } : {}) })
          return { items: page.items.map(present), nextCursor: page.nextCursor }
        } catch (error) {
          if (error instanceof InvalidCursorError) throw new LinksError(400, 'invalid_cursor', error.message)
          throw error
        }
      }
    )

    fastify.get(
      '/links/:code',
      { schema: { params: CodeParams, response: { 200: Type.Object({ code: Type.String(), url: Type.String() }), ...errors(404) } } },
      async (request) => {
        const link = await store.find(request.params.code)
        if (!link) throw new LinksError(404, 'link_not_found', 'no such link')
        return { code: link.code, url: link.url }
      }
    )

    fastify.get('/:code', { schema: { params: CodeParams } }, async (request, reply) => {
      const link = await store.find(request.params.code)
      if (!link) throw new LinksError(404, 'link_not_found', 'no such link')
      return reply.code(302).header('location', link.url).header('cache-control', 'private, max-age=60').send()
    })

    fastify.delete(
      '/links/:code',
      {
        // Deleting is sensitive: a revoked session's token is refused at once, not at its expiry.
        preHandler: fastify.requireAuth({ scopes: [WRITE], allowApiKeys: true, sensitive: true }),
        schema: { params: CodeParams, response: { 204: Type.Null(), ...errors(401, 403, 404, 503) } },
      },
      async (request, reply) => {
        const auth = authOf(request)
        // Someone else's link is "not found" for anyone but an admin: its existence is not disclosed.
        const deleted = await store.delete(request.params.code, isAdmin(auth) ? null : auth.userId)
        if (!deleted) throw new LinksError(404, 'link_not_found', 'no such link of yours')
        return reply.code(204).send(null)
      }
    )
  }
}
