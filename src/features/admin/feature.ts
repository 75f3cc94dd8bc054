import type { Feature } from '../feature.js'
import administration from './plugin.js'
import { AdminUser, AuditEvent } from './schemas.js'

/** The admin API itself is mounted by the app (adminApi in ./routes.ts), with every capability's adminRoutes inside it. */
export const admin: Feature = {
  name: 'admin',
  plugins: [administration],
  schemas: [AdminUser, AuditEvent],
}
