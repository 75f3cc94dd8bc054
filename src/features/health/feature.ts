import type { Feature } from '../feature.js'
import healthRoutes from './routes.js'

export const health: Feature = {
  name: 'health',
  routes: [{ prefix: '', plugin: healthRoutes }],
}
