import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { DomainError } from '../../errors.js'
import { errorResponses } from '../../http/error-schemas.js'
import { RequestOptionsJSON } from './schemas.js'

const SecondStepOptionsRequest = Type.Object(
  { mfa_token: Type.String({ maxLength: 128, description: 'the mfa_token of the password login\'s mfa_required answer' }) },
  { additionalProperties: false }
)

/**
 * The first step of a passkey sign-in (DESIGN §3.12), whose second is the
 * passkey grant on POST /auth/token; and the options of a password login's
 * second step with a passkey, whose answer goes to the mfa-otp grant.
 */
const passkey: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/passkey/options',
    {
      schema: {
        tags: ['passkeys'],
        summary: 'Start a sign-in with a passkey',
        description:
          'PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get(): the configured RP ID, no allowCredentials (the authenticator offers its discoverable passkeys), user verification required. ' +
          'Its challenge is single use and expires in 5 minutes. Then POST /auth/token with grant_type=urn:token-auth:grant-type:passkey and credential (the assertion). Limited per IP.',
        response: { 200: RequestOptionsJSON, ...errorResponses(429, 503) },
      },
    },
    async (request) => {
      await fastify.attemptLimits.passkey(request, 'options')
      return fastify.passkeys.authenticationOptions()
    }
  )

  fastify.post(
    '/mfa/passkey-options',
    {
      schema: {
        tags: ['passkeys', 'second factors'],
        summary: 'Start the passkey step of a password login',
        description:
          'For a password login answered mfa_required with "passkey" among its factors: PublicKeyCredentialRequestOptionsJSON with the user\'s passkeys in allowCredentials and user verification required, ' +
          'its challenge (single use, 5 minutes) bound to that user. Then POST /auth/token with grant_type=urn:token-auth:grant-type:mfa-otp, the mfa_token and credential (the assertion). ' +
          'The mfa_token is not spent here. 400 invalid_grant for an mfa_token that is unknown, used or expired, or whose user has no passkey. Limited per IP.',
        body: SecondStepOptionsRequest,
        response: { 200: RequestOptionsJSON, ...errorResponses(400, 429, 503) },
      },
    },
    async (request) => {
      await fastify.attemptLimits.passkey(request, 'options')
      const { userId } = await fastify.secondFactors.pendingLoginUser(request.body.mfa_token)
      const options = await fastify.passkeys.secondFactorOptions(userId)
      if (!options) throw new DomainError('invalid_grant', 'this account has no passkey: finish signing in with another factor')
      return options
    }
  )
}

export default passkey
