import { accounts } from './accounts/feature.js'
import { admin } from './admin/feature.js'
import { clients } from './clients/feature.js'
import { apiKeys } from './api-keys/feature.js'
import { dashboard } from './dashboard/feature.js'
import { email } from './email/feature.js'
import type { Feature } from './feature.js'
import { firstParty } from './first-party/feature.js'
import { health } from './health/feature.js'
import { metrics } from './metrics/feature.js'
import { oauth } from './oauth/feature.js'
import { passkeys } from './passkeys/feature.js'
import { recovery } from './recovery/feature.js'
import { retention } from './retention/feature.js'
import { secondFactors } from './second-factors/feature.js'
import { securityEvents } from './security-events/feature.js'
import { sessions } from './sessions/feature.js'
import { signingKeys } from './signing-keys/feature.js'
import { tokens } from './tokens/feature.js'
import { webhooks } from './webhooks/feature.js'

/**
 * Every capability the app mounts, one line each, in the order their
 * plugins are registered: a capability after those whose services it uses
 * (fastify-plugin checks each plugin's declared dependencies at start).
 */
export const FEATURES: readonly Feature[] = [
  metrics,
  signingKeys,
  email,
  sessions,
  clients,
  accounts,
  apiKeys,
  admin,
  recovery,
  secondFactors,
  passkeys,
  retention,
  webhooks,
  oauth,
  firstParty,
  tokens,
  securityEvents,
  health,
  dashboard,
]
