import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { page } from '../../shared/pagination-schemas.js'
import { foldEmail } from '../accounts/accounts.js'
import { ADMIN_SECURITY as security } from '../admin/routes.js'
import { OutboxQuery } from './schemas.js'

/** The email outbox for admins (DESIGN §3.11), inside the admin API's scope. */
const outboxRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/outbox',
    {
      schema: {
        tags: ['admin'],
        summary: 'Email outbox: queued, sent and dead messages, newest first',
        description:
          'Delivery state of every message. In the development mailbox (no SMTP_URL, NODE_ENV not production) each message also comes rendered, links included; otherwise `rendered` is null, so that no admin can read a user\'s reset link.',
        security,
        querystring: OutboxQuery,
        response: { 200: page(Type.Ref('OutboxMessage')), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => fastify.outbox.list({ ...request.query, ...(request.query.recipient ? { recipient: foldEmail(request.query.recipient) } : {}) })
  )
}

export default outboxRoutes
