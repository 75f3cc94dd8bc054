import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ApiError } from '../errors.js'
import { errorResponses } from '../schemas/errors.js'

const Status = Type.Object({ status: Type.Literal('ok') })

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/health',
    { schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Status } } },
    async () => ({ status: 'ok' as const })
  )

  fastify.get(
    '/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'The database is reachable',
        response: { 200: Status, ...errorResponses(503) },
      },
    },
    async () => {
      if (await fastify.databaseReachable()) return { status: 'ok' as const }
      throw new ApiError(503, 'database_unavailable', 'the database is not reachable', { 'retry-after': '2' })
    }
  )
}

export default health
