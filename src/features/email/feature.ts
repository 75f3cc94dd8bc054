import type { Feature } from '../feature.js'
import outboxRoutes from './admin-routes.js'
import mailDelivery from './mail-delivery-plugin.js'
import outbox from './plugin.js'
import { OutboxMessage } from './schemas.js'

export const email: Feature = {
  name: 'email',
  plugins: [outbox, mailDelivery],
  adminRoutes: [outboxRoutes],
  schemas: [OutboxMessage],
}
