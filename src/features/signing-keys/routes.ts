import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { JwkSet } from './schemas.js'

/** The public signing keys (DESIGN §3.1), under /.well-known. */
const jwksRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { config } = fastify
  fastify.get(
    '/jwks.json',
    {
      config: { publicCache: true },
      schema: {
        tags: ['discovery'],
        summary: 'Public signing keys',
        description:
          'Cached for less than the time a new key is published before it signs, so no cache holds a set lacking the signing key.',
        response: { 200: JwkSet },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${config.jwksMaxAgeSeconds}`)
      return fastify.keys.jwks()
    }
  )
}

export default jwksRoutes
