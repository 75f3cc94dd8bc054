import type { Feature } from '../feature.js'
import webhookAdminRoutes from './admin-routes.js'
import webhooksPlugin from './plugin.js'
import { Delivery, Webhook } from './schemas.js'

/** Webhooks (DESIGN §3.18): every audit event, signed, to the endpoints subscribed to it. */
export const webhooks: Feature = {
  name: 'webhooks',
  plugins: [webhooksPlugin],
  adminRoutes: [webhookAdminRoutes],
  schemas: [Webhook, Delivery],
}
