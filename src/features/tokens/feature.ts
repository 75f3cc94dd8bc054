import type { Feature } from '../feature.js'
import discoveryRoutes from './discovery-routes.js'
import tokenRoutes from './routes.js'
import { TokenResponse } from './schemas.js'

/** The token endpoint, revocation, introspection and discovery; its grants are registered in ./grants/index.ts. */
export const tokens: Feature = {
  name: 'tokens',
  routes: [
    { prefix: '/auth', plugin: tokenRoutes },
    { prefix: '/.well-known', plugin: discoveryRoutes },
  ],
  schemas: [TokenResponse],
}
