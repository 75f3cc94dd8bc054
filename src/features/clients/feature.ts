import type { Feature } from '../feature.js'
import clientAdminRoutes from './admin-routes.js'
import clientsPlugin from './plugin.js'
import { RegisteredClient } from './schemas.js'

/** OAuth clients in the database (DESIGN §3.14): the registry and its admin API. */
export const clients: Feature = {
  name: 'clients',
  plugins: [clientsPlugin],
  adminRoutes: [clientAdminRoutes],
  schemas: [RegisteredClient],
}
