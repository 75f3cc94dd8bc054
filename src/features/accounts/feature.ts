import type { Feature } from '../feature.js'
import signupRoutes from './auth-routes.js'
import accountsPlugin from './plugin.js'
import { Session, User } from './schemas.js'
import userRoutes from './user-routes.js'

export const accounts: Feature = {
  name: 'accounts',
  plugins: [accountsPlugin],
  routes: [
    { prefix: '/auth', plugin: signupRoutes },
    { prefix: '/users', plugin: userRoutes },
  ],
  schemas: [User, Session],
}
