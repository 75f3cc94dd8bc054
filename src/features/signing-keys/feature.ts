import type { Feature } from '../feature.js'
import keys from './plugin.js'
import jwksRoutes from './routes.js'

export const signingKeys: Feature = {
  name: 'signing-keys',
  plugins: [keys],
  routes: [{ prefix: '/.well-known', plugin: jwksRoutes }],
}
