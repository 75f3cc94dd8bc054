import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from '../../errors.js'

/**
 * Sheds load with 503 and Retry-After when the event loop stalls, instead of
 * letting requests queue without bound. Utilisation alone is no signal: a
 * busy, healthy instance runs near 100 %.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    const { maxEventLoopDelayMs } = fastify.config
    if (maxEventLoopDelayMs === 0) return
    await fastify.register(underPressure, {
      maxEventLoopDelay: maxEventLoopDelayMs,
      retryAfter: 5,
      pressureHandler: (_request, _reply, type, value) => {
        throw new ApiError('service_overloaded', `service under pressure (${type}: ${value}); retry later`, {
          'retry-after': '5',
        })
      },
    })
  },
  { name: 'under-pressure', dependencies: ['config'] }
)
