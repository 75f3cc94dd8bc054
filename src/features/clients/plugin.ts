import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { enabledGrantTypes } from '../tokens/grants/index.js'
import { ClientRegistry } from './clients.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The OAuth clients (features/clients/clients.ts). */
    clients: ClientRegistry
  }
}

/** The client registry, with configuration's first-party clients seeded at start. */
async function clients (fastify: FastifyInstance) {
  const { config } = fastify
  const user = config.clients[config.defaultClientId] ?? Object.values(config.clients)[0]!
  const registry = new ClientRegistry(fastify.db, fastify.serverKeys.clientSecretHash, {
    configured: config.clients,
    apiScopes: config.scopes,
    lifetimes: {
      accessTokenTtlSeconds: user.accessTokenTtlSeconds,
      refreshIdleTtlSeconds: user.refreshIdleTtlSeconds,
      refreshAbsoluteTtlSeconds: user.refreshAbsoluteTtlSeconds,
    },
    grantTypes: enabledGrantTypes(config),
    now: fastify.now,
  })
  await registry.seed()
  fastify.decorate('clients', registry)
}

export default fp(clients, { name: 'clients', dependencies: ['config', 'database'] })
