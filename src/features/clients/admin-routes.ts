import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ADMIN_SECURITY } from '../admin/routes.js'
import { errorResponses } from '../../http/error-schemas.js'
import { clientMetadata, type Client } from './clients.js'
import { ClientList, ClientParams, ClientPatch, ClientRegistration, type RegisteredClient } from './schemas.js'

const security = ADMIN_SECURITY

/** The admin API of clients (DESIGN §3.14), in RFC 7591's metadata names. */
const clientAdminRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { clients } = fastify
  const actor = (request: { principal: { userId: string } | null; ip: string }) => ({ id: request.principal!.userId, ip: request.ip })

  fastify.post(
    '/clients',
    {
      schema: {
        tags: ['clients'],
        summary: 'Register a client',
        description: 'token_endpoint_auth_method none makes a public client; a secret method a confidential one, whose client_secret is in this answer only.',
        security,
        body: ClientRegistration,
        response: { 201: Type.Ref('RegisteredClient'), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.create(request.body, actor(request))
      reply.code(201).header('cache-control', 'no-store')
      return registered(client, secret)
    }
  )

  fastify.get(
    '/clients',
    { schema: { tags: ['clients'], summary: 'Every client', security, response: { 200: ClientList, ...errorResponses(401, 403) } } },
    async () => ({ items: (await clients.list()).map((client) => registered(client)) })
  )

  fastify.get(
    '/clients/:id',
    { schema: { tags: ['clients'], summary: 'A client', security, params: ClientParams, response: { 200: Type.Ref('RegisteredClient'), ...errorResponses(401, 403, 404) } } },
    async (request) => registered(await clients.get(request.params.id))
  )

  fastify.patch(
    '/clients/:id',
    {
      schema: {
        tags: ['clients'],
        summary: "Change a client's metadata",
        description: 'A configured first-party client keeps its type and grants. A public client made confidential gets a client_secret, in this answer only.',
        security,
        params: ClientParams,
        body: ClientPatch,
        response: { 200: Type.Ref('RegisteredClient'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.update(request.params.id, request.body, actor(request))
      reply.header('cache-control', 'no-store')
      return registered(client, secret)
    }
  )

  fastify.post(
    '/clients/:id/secret',
    {
      schema: {
        tags: ['clients'],
        summary: "Rotate a confidential client's secret",
        description: 'The old secret stops working at once; the new one is in this answer only.',
        security,
        params: ClientParams,
        response: { 200: Type.Ref('RegisteredClient'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.rotateSecret(request.params.id, actor(request))
      reply.header('cache-control', 'no-store')
      return registered(client, secret)
    }
  )

  fastify.delete(
    '/clients/:id',
    {
      schema: {
        tags: ['clients'],
        summary: 'Delete a client',
        description: "Ends the client's sessions and its users' consents. Configured first-party clients cannot be deleted (409).",
        security,
        params: ClientParams,
        response: { 204: Type.Null(), ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const revoked = await clients.delete(request.params.id, actor(request), (tx, clientId) => fastify.sessions.revoke({ clientId }, 'client_deleted', tx))
      request.log.info({ clientId: request.params.id, revokedSessions: revoked.length }, 'client deleted')
      return reply.code(204).send(null)
    }
  )
}

function registered (client: Client, secret?: string): RegisteredClient {
  return {
    client_id: client.id,
    ...(secret ? { client_secret: secret } : {}),
    ...clientMetadata(client),
    configured: client.configured,
    created_at: client.createdAt.toISOString(),
    updated_at: client.updatedAt.toISOString(),
  }
}

export default clientAdminRoutes
