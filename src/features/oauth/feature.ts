import type { Feature } from '../feature.js'
import authorizeRoutes from './authorize-routes.js'
import discoveryRoutes from './discovery-routes.js'
import { adminGrantRoutes, AppsWithAccess, userGrantRoutes } from './grant-routes.js'
import oauthPlugin from './plugin.js'
import userinfoRoutes from './userinfo-routes.js'

/**
 * The OAuth 2.1 authorization server and OpenID provider (DESIGN §3.15):
 * the authorization endpoint and its hosted pages, consents, codes (their
 * grant is registered in tokens/grants), userinfo, logout and discovery.
 */
export const oauth: Feature = {
  name: 'oauth',
  plugins: [oauthPlugin],
  routes: [
    { prefix: '/oauth', plugin: authorizeRoutes },
    { prefix: '/oauth', plugin: userinfoRoutes },
    { prefix: '/users/me', plugin: userGrantRoutes },
    { prefix: '/.well-known', plugin: discoveryRoutes },
  ],
  adminRoutes: [adminGrantRoutes],
  schemas: [AppsWithAccess],
}
