import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { deriveKeys, type DerivedKeys } from '../shared/derived-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    serverKeys: DerivedKeys
    /** The service's clock; tests replace it to move time without waiting. */
    now(): number
  }
}

export interface ConfigPluginOptions {
  config: Config
  /** Injected clock for tests (expiry, grace window); Date.now otherwise. */
  now?: () => number
}

async function configPlugin (fastify: FastifyInstance, options: ConfigPluginOptions) {
  const { config } = options
  if (!config.secretKey) throw new Error('config.secretKey must be resolved before the app starts (see resolveSecretKey)')
  fastify.decorate('config', config)
  fastify.decorate('serverKeys', deriveKeys(config.secretKey))
  fastify.decorate('now', options.now ?? Date.now)
}

export default fp(configPlugin, { name: 'config' })
