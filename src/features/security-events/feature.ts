import type { Feature } from '../feature.js'
import securityEventsPlugin from './plugin.js'
import ssfRoutes from './routes.js'
import { StreamConfiguration } from './schemas.js'
import ssfConfigurationRoutes from './well-known-routes.js'

/**
 * Security events for the platform's services (DESIGN §3.18): Security
 * Event Tokens (RFC 8417) with CAEP's session-revoked and credential-change,
 * over RFC 8936 poll and RFC 8935 push, managed per SSF 1.0.
 */
export const securityEvents: Feature = {
  name: 'security-events',
  plugins: [securityEventsPlugin],
  routes: [
    { prefix: '/ssf', plugin: ssfRoutes },
    { prefix: '/.well-known', plugin: ssfConfigurationRoutes },
  ],
  schemas: [StreamConfiguration],
}
