import Type, { type Static } from 'typebox'
import { ERROR_CODES } from '../errors.js'

/** The one error shape of every non-OAuth endpoint (DESIGN §4). */
export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String({ description: 'HTTP reason phrase' }),
    code: Type.Enum(ERROR_CODES, { description: 'stable machine-readable code: one of the catalogue (src/errors.ts), each with its one status' }),
    message: Type.String({ description: 'human-readable explanation' }),
  },
  { $id: 'ErrorResponse', title: 'Error' }
)
export type ErrorResponse = Static<typeof ErrorResponse>

/** RFC 6749 §5.2 error response, used by the token, revocation and introspection endpoints. */
export const OAuthErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'RFC 6749 error code' }),
    error_description: Type.String(),
    mfa_token: Type.Optional(Type.String({
      description: 'with error mfa_required: the token of the login\'s second step (single use, 5 minutes, for this client and transport); send it with grant_type urn:token-auth:grant-type:mfa-otp',
    })),
    auth_session: Type.Optional(Type.String({
      description: 'with error insufficient_authorization (the authorization challenge endpoint): the flow\'s session for its next request (single use per step, 5 minutes, for this client and transport)',
    })),
    factors: Type.Optional(Type.Array(Type.Union([Type.Literal('otp'), Type.Literal('recovery_code'), Type.Literal('passkey')]), {
      description:
        'with error mfa_required or insufficient_authorization: what the second step accepts (otp: a TOTP code; recovery_code: a recovery code; passkey: an assertion over options from POST /auth/mfa/passkey-options)',
    })),
  },
  { $id: 'OAuthErrorResponse', title: 'OAuth error' }
)
export type OAuthErrorResponse = Static<typeof OAuthErrorResponse>

export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, Type.Ref('ErrorResponse')]))

export const oauthErrorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, Type.Ref('OAuthErrorResponse')]))
