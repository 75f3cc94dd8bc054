import cookie from '@fastify/cookie'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export default fp(
  async (fastify: FastifyInstance) => {
    // No cookie signing: the only cookie is the refresh token, already unguessable and verified by hash.
    // No parsing hook either: only the routes that take the refresh cookie read
    // cookies (features/tokens/transport.ts readRefreshCookie), and a global hook
    // would parse every request's Cookie header for nothing.
    await fastify.register(cookie, { parseOptions: {}, hook: false })
  },
  { name: 'cookie' }
)
