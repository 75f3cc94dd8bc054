import Type from 'typebox'
import { NO_NUL } from '../../shared/input-formats.js'
import { ClientId } from '../tokens/schemas.js'
import { CREDENTIAL, OTP, PASSWORD, RECOVERY_CODE, USERNAME } from '../tokens/grants/params.js'

/** POST /oauth/authorize-challenge (draft-ietf-oauth-first-party-apps-04 §5.1), form-encoded or JSON; unknown parameters are ignored. */
export const AuthorizationChallengeRequest = Type.Object(
  {
    client_id: Type.Optional(ClientId),
    client_secret: Type.Optional(Type.String({ maxLength: 256, [NO_NUL]: false })),
    response_type: Type.Optional(Type.String({ maxLength: 32, description: 'code' })),
    scope: Type.Optional(Type.String({ maxLength: 1024 })),
    code_challenge: Type.Optional(Type.String({ maxLength: 128, description: 'PKCE (S256), required on the first request; a later step may repeat it' })),
    code_challenge_method: Type.Optional(Type.String({ maxLength: 16, description: 'S256' })),
    username: Type.Optional(USERNAME),
    password: Type.Optional(PASSWORD),
    auth_session: Type.Optional(Type.String({ maxLength: 128, description: 'the auth_session of an insufficient_authorization answer' })),
    otp: Type.Optional(OTP),
    recovery_code: Type.Optional(RECOVERY_CODE),
    credential: Type.Optional(CREDENTIAL),
  },
  { additionalProperties: true }
)

export const AuthorizationChallengeResponse = Type.Object({
  authorization_code: Type.String({ description: 'exchange it at POST /auth/token with grant_type=authorization_code, code_verifier and no redirect_uri' }),
})
