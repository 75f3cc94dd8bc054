import { accountsCatalogue } from './accounts/catalogue.js'
import { adminCatalogue } from './admin/catalogue.js'
import { apiKeysCatalogue } from './api-keys/catalogue.js'
import { clientsCatalogue } from './clients/catalogue.js'
import { dashboardCatalogue } from './dashboard/catalogue.js'
import { emailCatalogue } from './email/catalogue.js'
import { firstPartyCatalogue } from './first-party/catalogue.js'
import { oauthCatalogue } from './oauth/catalogue.js'
import { passkeysCatalogue } from './passkeys/catalogue.js'
import { recoveryCatalogue } from './recovery/catalogue.js'
import { secondFactorsCatalogue } from './second-factors/catalogue.js'
import { securityEventsCatalogue } from './security-events/catalogue.js'
import { sessionsCatalogue } from './sessions/catalogue.js'
import { signingKeysCatalogue } from './signing-keys/catalogue.js'
import { webhooksCatalogue } from './webhooks/catalogue.js'

/**
 * Every capability's catalogue (features/catalogue.ts): one line each. The
 * error catalogue, the audit event types, the derived-key purposes and the
 * retention targets are assembled from this list. Kept apart from the
 * capabilities' manifests (features/index.ts), which import their plugins:
 * this list must be importable by the error model itself.
 */
export const CATALOGUES = [
  accountsCatalogue,
  sessionsCatalogue,
  clientsCatalogue,
  signingKeysCatalogue,
  apiKeysCatalogue,
  adminCatalogue,
  emailCatalogue,
  recoveryCatalogue,
  secondFactorsCatalogue,
  passkeysCatalogue,
  oauthCatalogue,
  firstPartyCatalogue,
  securityEventsCatalogue,
  dashboardCatalogue,
  webhooksCatalogue,
] as const
