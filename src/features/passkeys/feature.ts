import type { Feature } from '../feature.js'
import passkeyAuthRoutes from './auth-routes.js'
import passkeysPlugin from './plugin.js'
import { Passkey } from './schemas.js'
import passkeyUserRoutes from './user-routes.js'

export const passkeys: Feature = {
  name: 'passkeys',
  plugins: [passkeysPlugin],
  routes: [
    { prefix: '/auth', plugin: passkeyAuthRoutes },
    { prefix: '/users', plugin: passkeyUserRoutes },
  ],
  schemas: [Passkey],
}
