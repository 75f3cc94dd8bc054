import type { Feature } from '../feature.js'
import sessionsPlugin from './plugin.js'
import revocation from './revocation-plugin.js'
import sessionRoutes from './routes.js'

export const sessions: Feature = {
  name: 'sessions',
  plugins: [revocation, sessionsPlugin],
  routes: [{ prefix: '/auth', plugin: sessionRoutes }],
}
