import type { Feature } from '../feature.js'
import resetRoutes from './admin-routes.js'
import recoveryPlugin from './plugin.js'
import recoveryRoutes from './routes.js'
import { Accepted } from './schemas.js'
import emailChangeRoutes from './user-routes.js'

export const recovery: Feature = {
  name: 'recovery',
  plugins: [recoveryPlugin],
  routes: [
    { prefix: '/auth', plugin: recoveryRoutes },
    { prefix: '/users', plugin: emailChangeRoutes },
  ],
  adminRoutes: [resetRoutes],
  schemas: [Accepted],
}
