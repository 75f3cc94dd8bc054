import cookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export default fp(
  async (fastify: FastifyInstance) => {
    // No cookie signing: the only cookie is the refresh token, already unguessable and verified by hash.
    await fastify.register(cookie, { parseOptions: {} })
  },
  { name: 'cookie' },
)
