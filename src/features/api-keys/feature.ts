import type { Feature } from '../feature.js'
import apiKeysPlugin from './plugin.js'
import apiKeyRoutes from './routes.js'
import { ApiKey } from './schemas.js'

export const apiKeys: Feature = {
  name: 'api-keys',
  plugins: [apiKeysPlugin],
  routes: [{ prefix: '/api-keys', plugin: apiKeyRoutes }],
  schemas: [ApiKey],
}
