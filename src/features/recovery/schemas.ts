import Type from 'typebox'
import { LINK_TOKEN_PATTERN } from './link-secrets.js'
import { Email, Password } from '../accounts/schemas.js'

/** The secret of an emailed link, as the SPA page read it from the link's fragment. */
export const LinkToken = Type.String({ pattern: LINK_TOKEN_PATTERN, description: 'the token= value of the emailed link (256 bits, base64url)' })

export const PasswordResetRequest = Type.Object({ email: Email }, { additionalProperties: false })

export const PasswordResetConfirm = Type.Object({ token: LinkToken, newPassword: Password }, { additionalProperties: false })

/** The one answer of every request that may send email, whatever happened. */
export const Accepted = Type.Object(
  { status: Type.Literal('accepted'), message: Type.String() },
  { $id: 'Accepted', title: 'Accepted' }
)

export const VerifyEmailRequest = Type.Object({ token: LinkToken }, { additionalProperties: false })

export const VerifiedAddress = Type.Object({
  purpose: Type.Union([Type.Literal('email_verification'), Type.Literal('email_change')], {
    description: 'email_verification: the address is verified; email_change: the account\'s address is now this one (and verified)',
  }),
  email: Type.String(),
})

export const CredentialRemovalRequest = Type.Object({ token: LinkToken }, { additionalProperties: false })

export const RemovedCredentials = Type.Object({
  passkeys: Type.Integer({ minimum: 0, description: 'passkeys deleted (the sessions they signed in to are ended)' }),
  apiKeys: Type.Integer({ minimum: 0, description: 'API keys revoked' }),
})
