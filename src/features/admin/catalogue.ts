import { defineCatalogue } from '../catalogue.js'

export const adminCatalogue = defineCatalogue({
  // An admin demoting or disabling themself; an unknown user id.
  errors: { self_lockout: 400, user_not_found: 404 },
  auditEvents: ['role_changed', 'user_disabled', 'user_enabled'],
})
