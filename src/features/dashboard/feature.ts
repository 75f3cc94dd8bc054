import type { Feature } from '../feature.js'
import dashboardPlugin from './plugin.js'

export const dashboard: Feature = {
  name: 'dashboard',
  routes: [{ prefix: '', plugin: dashboardPlugin }],
}
