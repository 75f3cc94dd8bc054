import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { foldEmail } from '../accounts/accounts.js'
import { errorResponses } from '../../http/error-schemas.js'
import { CredentialRemovalRequest, PasswordResetConfirm, PasswordResetRequest, RemovedCredentials, VerifiedAddress, VerifyEmailRequest } from './schemas.js'
import { signedInUser } from '../../http/signed-in-user.js'

const RESET_ACCEPTED = {
  status: 'accepted',
  message: 'If an account with this address exists, a link to reset its password is on its way.',
} as const

/** Password reset and email verification (DESIGN §3.11). The links' POSTs are public: the secret in the link is the credential. */
const recovery: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/password-reset',
    {
      schema: {
        tags: ['recovery'],
        summary: 'Email a password-reset link',
        description:
          'Always 202 with the same body, answered before the address is even looked up, so neither the answer nor its timing tells whether an account exists. ' +
          'An existing, enabled account gets a link valid PASSWORD_RESET_TTL_SECONDS; a new request replaces the previous link. Limited per address and per IP.',
        body: PasswordResetRequest,
        response: { 202: Type.Ref('Accepted'), ...errorResponses(400, 429) },
      },
    },
    async (request, reply) => {
      await fastify.attemptLimits.email(request, foldEmail(request.body.email))
      fastify.recovery.requestPasswordReset(request.body.email, request.ip)
      return reply.code(202).send(RESET_ACCEPTED)
    }
  )

  fastify.post(
    '/password-reset/confirm',
    {
      schema: {
        tags: ['recovery'],
        summary: 'Set a new password with a reset link\'s token',
        description:
          'The new password is checked first (8 to 72 bytes, not common): a weak one leaves the link usable. Then the token is spent (once: of concurrent uses one succeeds), ' +
          'every session of the user is revoked and a notice is emailed. 400 invalid_link_token for an expired, used, replaced or unknown token.',
        body: PasswordResetConfirm,
        response: { 204: Type.Null(), ...errorResponses(400, 503) },
      },
    },
    async (request, reply) => {
      await fastify.recovery.confirmPasswordReset({ token: request.body.token, newPassword: request.body.newPassword, ip: request.ip })
      return reply.code(204).send(null)
    }
  )

  fastify.post(
    '/verify-email',
    {
      schema: {
        tags: ['recovery'],
        summary: 'Verify an address with an emailed link\'s token',
        description:
          'The token of a verification link marks the account\'s address verified; the token of an address-change link moves the account to the new address (if no other account took it meanwhile: 409 email_taken). ' +
          'Opening the link\'s page spends nothing; this POST does, once. 400 invalid_link_token for an expired, used, replaced or unknown token.',
        body: VerifyEmailRequest,
        response: { 200: VerifiedAddress, ...errorResponses(400, 409) },
      },
    },
    async (request) => fastify.recovery.verifyEmail({ token: request.body.token, ip: request.ip })
  )

  fastify.post(
    '/credential-removal',
    {
      schema: {
        tags: ['recovery'],
        summary: 'Remove the passkeys and API keys a password-change notice listed',
        description:
          'The token of the one-click link in a "your password was changed" notice that listed passkeys or API keys added since the address was last confirmed: ' +
          'deletes those passkeys (ending the sessions they signed in to) and revokes those keys, whichever are still there. Once; the link works EMAIL_VERIFY_TTL_SECONDS. ' +
          '400 invalid_link_token for an expired, used, replaced or unknown token.',
        body: CredentialRemovalRequest,
        response: { 200: RemovedCredentials, ...errorResponses(400) },
      },
    },
    async (request) => fastify.recovery.removeListedCredentials({ token: request.body.token, ip: request.ip })
  )

  fastify.post(
    '/verify-email/resend',
    {
      preHandler: fastify.authenticate,
      schema: {
        tags: ['recovery'],
        summary: 'Email a new verification link to your address',
        description: 'The previous link stops working. 409 email_already_verified when there is nothing to verify. Limited per address and per IP.',
        security: [{ bearerAuth: [] }],
        response: { 202: Type.Ref('Accepted'), ...errorResponses(401, 409, 429) },
      },
    },
    async (request, reply) => {
      const user = await signedInUser(fastify, request)
      await fastify.attemptLimits.email(request, user.email)
      await fastify.recovery.resendVerification(user.id)
      return reply.code(202).send({ status: 'accepted', message: `A new verification link was sent to ${user.email}.` })
    }
  )
}

export default recovery
