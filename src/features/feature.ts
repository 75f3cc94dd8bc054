import type { FastifyPluginAsync } from 'fastify'
import type { TSchema } from 'typebox'

/**
 * A capability, as the app mounts it (src/app.ts): the plugins that
 * decorate the app with its services, its routes and their prefixes, its
 * routes inside the admin API's scope, and the schemas the OpenAPI document
 * names by $id. Its error codes, audit events, derived keys and retention
 * are its catalogue's (features/catalogue.ts). Listed once in
 * features/index.ts.
 */
export interface Feature {
  name: string
  /** Registered in the order of FEATURES: a capability comes after those whose services it uses. */
  plugins?: FastifyPluginAsync[]
  routes?: { prefix: string; plugin: FastifyPluginAsync }[]
  /** Mounted under /admin, where the admin API's rules hold (features/admin/routes.ts). */
  adminRoutes?: FastifyPluginAsync[]
  /** Schemas with an $id that routes name with Type.Ref. */
  schemas?: TSchema[]
}
