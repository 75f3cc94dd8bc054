import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../../schemas/errors.js'
import { RequestOptionsJSON } from '../../schemas/passkeys.js'

/** The first step of a passkey sign-in (DESIGN §3.12); the second is the passkey grant on POST /auth/token. */
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
}

export default passkey
