import Type from 'typebox'
import { DateTime, Password } from '../accounts/schemas.js'

/** A code as the user types it: 6 digits, spaces allowed (apps show "123 456"). */
export const OtpCode = Type.String({ minLength: 6, maxLength: 16, description: 'the 6-digit code the authenticator app shows now' })

export const TotpEnrolmentResponse = Type.Object(
  {
    secret: Type.String({ description: 'the shared secret in base32 (RFC 4648), for typing into an app by hand' }),
    otpauth_uri: Type.String({ description: 'otpauth://totp/ URI (issuer PRODUCT_NAME, label the account\'s email; SHA1, 6 digits, 30 s)' }),
    qr_code: Type.String({ description: 'the URI as a QR code: an image/svg+xml data URL' }),
  },
  { title: 'TOTP enrolment' }
)

export const TotpConfirmRequest = Type.Object({ code: OtpCode }, { additionalProperties: false })

export const RecoveryCodesResponse = Type.Object(
  {
    recoveryCodes: Type.Array(Type.String({ pattern: '^[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$' }), {
      description: 'ten single-use recovery codes, shown this once; any case, hyphens optional when typed',
    }),
  },
  { title: 'Recovery codes' }
)

export const TotpRemovalRequest = Type.Union(
  [
    Type.Object({ code: OtpCode }, { additionalProperties: false }),
    Type.Object({ password: Password }, { additionalProperties: false }),
  ],
  { description: 'a current code of the authenticator, or the account\'s password' }
)

export const FactorList = Type.Object(
  {
    totp: Type.Union([
      Type.Object({
        confirmed: Type.Boolean({ description: 'false while the enrolment waits for its first code' }),
        createdAt: DateTime,
        confirmedAt: Type.Union([DateTime, Type.Null()]),
      }),
      Type.Null(),
    ]),
    recoveryCodes: Type.Object({ remaining: Type.Integer({ minimum: 0 }) }),
  },
  { title: 'Second factors' }
)

export const SecondFactorsReset = Type.Object(
  { removed: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'rows removed by kind of factor (totp, recovery_codes, ...)' }) },
  { title: 'Second factors reset' }
)
