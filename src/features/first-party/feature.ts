import type { Feature } from '../feature.js'
import challengeRoutes from './routes.js'

/** First-party sign-in without the password grant (DESIGN §3.16): the authorization challenge endpoint. */
export const firstParty: Feature = {
  name: 'first-party',
  routes: [{ prefix: '/oauth', plugin: challengeRoutes }],
}
