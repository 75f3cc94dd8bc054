import type { Feature } from '../feature.js'
import tokenRoutes from './routes.js'
import { TokenResponse } from './schemas.js'

/** The token endpoint, revocation and introspection (discovery is features/oauth's); its grants are registered in ./grants/index.ts. */
export const tokens: Feature = {
  name: 'tokens',
  routes: [
    { prefix: '/auth', plugin: tokenRoutes },
  ],
  schemas: [TokenResponse],
}
