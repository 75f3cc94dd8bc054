import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ADMIN_SECURITY } from '../admin/routes.js'
import { errorResponses } from '../../http/error-schemas.js'
import { DeliveryPage, DeliveryParams, DeliveryQuery, ReplayAnswer, ReplayRequest, WebhookList, WebhookParams, WebhookPatch, WebhookRegistration } from './schemas.js'

const security = ADMIN_SECURITY
const tags = ['webhooks']

/** The admin API of webhooks (DESIGN §3.18). */
const webhookAdminRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { webhooks } = fastify
  const actor = (request: { principal: { userId: string } | null; ip: string }) => ({ id: request.principal!.userId, ip: request.ip })

  fastify.post(
    '/webhooks',
    {
      schema: {
        tags,
        summary: 'Register a webhook endpoint',
        description: 'Events are POSTed to the URL as Standard Webhooks 1.0 messages, signed with the secret in this answer (shown this once).',
        security,
        body: WebhookRegistration,
        response: { 201: Type.Ref('Webhook'), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await webhooks.create(request.body, actor(request))
      reply.code(201).header('cache-control', 'no-store')
      return { ...webhook, secret }
    }
  )

  fastify.get(
    '/webhooks',
    { schema: { tags, summary: 'Every webhook endpoint', security, response: { 200: WebhookList, ...errorResponses(401, 403) } } },
    async () => ({ items: await webhooks.list() })
  )

  fastify.get(
    '/webhooks/:id',
    { schema: { tags, summary: 'A webhook endpoint', security, params: WebhookParams, response: { 200: Type.Ref('Webhook'), ...errorResponses(400, 401, 403, 404) } } },
    async (request) => webhooks.get(request.params.id)
  )

  fastify.patch(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Change a webhook endpoint',
        description: 'enabled: false stops its deliveries; true resumes them and clears a disabling for failures.',
        security,
        params: WebhookParams,
        body: WebhookPatch,
        response: { 200: Type.Ref('Webhook'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => webhooks.update(request.params.id, request.body, actor(request))
  )

  fastify.post(
    '/webhooks/:id/secret',
    {
      schema: {
        tags,
        summary: "Rotate a webhook endpoint's secret",
        description: 'The new secret is in this answer only. For a day both sign each message (two signatures in webhook-signature), so receivers can switch without losing one.',
        security,
        params: WebhookParams,
        response: { 200: Type.Ref('Webhook'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await webhooks.rotateSecret(request.params.id, actor(request))
      reply.header('cache-control', 'no-store')
      return { ...webhook, secret }
    }
  )

  fastify.get(
    '/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        summary: "A webhook endpoint's deliveries, newest first",
        description: 'Each with its status, attempts, the last answer and its latency, and the log of its last attempts.',
        security,
        params: WebhookParams,
        querystring: DeliveryQuery,
        response: { 200: DeliveryPage, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => webhooks.deliveries(request.params.id, { ...request.query, limit: request.query.limit ?? 50 })
  )

  fastify.post(
    '/webhooks/:id/deliveries/:deliveryId/retry',
    {
      schema: {
        tags,
        summary: 'Deliver again now',
        description: 'The delivery is due at once with a fresh budget of attempts and the same webhook-id (a delivered one is sent again).',
        security,
        params: DeliveryParams,
        response: { 202: Type.Ref('WebhookDelivery'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const delivery = await webhooks.retry(request.params.id, request.params.deliveryId)
      fastify.webhookDelivery.kick()
      return reply.code(202).send(delivery)
    }
  )

  fastify.post(
    '/webhooks/:id/replay',
    {
      schema: {
        tags,
        summary: 'Replay a time range',
        description: "Every event of the endpoint's types in [since, until) is delivered again, each with its own webhook-id (receivers deduplicate).",
        security,
        params: WebhookParams,
        body: ReplayRequest,
        response: { 202: ReplayAnswer, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const queued = await webhooks.replay(request.params.id, { since: new Date(request.body.since), until: new Date(request.body.until) }, actor(request))
      fastify.webhookDelivery.kick()
      return reply.code(202).send({ queued })
    }
  )

  fastify.delete(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Delete a webhook endpoint',
        description: 'Its deliveries, sent or not, are deleted with it.',
        security,
        params: WebhookParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await webhooks.delete(request.params.id, actor(request))
      return reply.code(204).send(null)
    }
  )
}

export default webhookAdminRoutes
