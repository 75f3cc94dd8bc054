import type { Feature } from '../feature.js'
import factorResetRoutes from './admin-routes.js'
import secondFactorsPlugin from './plugin.js'
import mfaRoutes from './routes.js'

export const secondFactors: Feature = {
  name: 'second-factors',
  plugins: [secondFactorsPlugin],
  routes: [{ prefix: '/users', plugin: mfaRoutes }],
  adminRoutes: [factorResetRoutes],
}
