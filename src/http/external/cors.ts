import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** CORS with credentials for the allow-listed SPA origins only (DESIGN §3.6). */
export default fp(
  async (fastify: FastifyInstance) => {
    const allowed = new Set(fastify.config.corsOrigins)
    await fastify.register(cors, {
      origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
      credentials: true,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Requested-With', 'Token-Transport', 'X-API-Key'],
      exposedHeaders: ['Retry-After', 'WWW-Authenticate', 'X-Request-Id'],
      maxAge: 600,
    })
  },
  { name: 'cors', dependencies: ['config'] }
)
