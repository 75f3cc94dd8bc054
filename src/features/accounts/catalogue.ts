import { defineCatalogue } from '../catalogue.js'

export const accountsCatalogue = defineCatalogue({
  errors: {
    // DESIGN §3.3: a password sign-up or a change refuses; an address that is not one; a wrong current password;
    // an address taken; the account changed while a request acted on it.
    weak_password: 400,
    invalid_email: 400,
    invalid_credentials: 403,
    email_taken: 409,
    account_changed: 409,
    // A credential that signs in without the password (a passkey, an API key) asked for while the address is unverified.
    email_verification_required: 403,
  },
  auditEvents: ['user_signed_up', 'login_succeeded', 'login_failed', 'password_changed', 'password_change_failed'],
})
