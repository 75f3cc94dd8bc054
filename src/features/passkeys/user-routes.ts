import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { Uuid } from '../../shared/input-formats.js'
import { CreationOptionsJSON, PasskeyRegistrationRequest, PasskeyRenameRequest, RequestOptionsJSON } from './schemas.js'

const PasskeyParams = Type.Object({ id: Uuid })

/**
 * The signed-in user's passkeys (DESIGN §3.12), with access tokens only.
 * Registering one adds a way into the account: it needs a verified address,
 * a recent authentication and, on an account with a second factor, a
 * step-up with it. Deleting one needs a recent authentication and ends the
 * sessions it signed in to. An admin made to enrol a first factor
 * (REQUIRE_MFA_FOR_ADMINS) can register and list.
 */
const passkeys: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post(
    '/me/passkeys/options',
    {
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authorize({ addsFactor: true }),
      schema: {
        tags: ['passkeys'],
        summary: 'Start registering a passkey',
        description:
          'PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create(): the configured relying party (WEBAUTHN_RP_ID), a discoverable credential with user verification, ' +
          'no attestation, your existing passkeys excluded. Its challenge is single use and expires in 5 minutes; a new request replaces it. 409 passkey_limit past 20 passkeys. ' +
          '403 email_verification_required while your address is unverified; 401 insufficient_user_authentication without a recent authentication or, on an account with a second factor, without one proven in this session (step up with it).',
        security: [{ bearerAuth: [] }],
        response: { 200: CreationOptionsJSON, ...errorResponses(401, 403, 409) },
      },
    },
    async (request) => fastify.passkeys.registrationOptions(request.user.sub)
  )

  fastify.post(
    '/me/passkeys',
    {
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authorize({ addsFactor: true }),
      schema: {
        tags: ['passkeys'],
        summary: 'Finish registering a passkey',
        description:
          'The credential navigator.credentials.create() returned, as JSON. Verified against WEBAUTHN_ORIGINS and WEBAUTHN_RP_ID with user verification required. ' +
          '400 passkey_challenge_invalid (challenge unknown, used, expired or another user\'s), 400 passkey_rejected (does not verify), 409 passkey_exists, 409 passkey_limit, ' +
          '403 email_verification_required. The account\'s address is told, with the passkey\'s name.',
        security: [{ bearerAuth: [] }],
        body: PasskeyRegistrationRequest,
        response: { 201: Type.Ref('Passkey'), ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const passkey = await fastify.passkeys.register({ userId: request.user.sub, name: request.body.name, response: request.body.response, ip: request.ip })
      return reply.code(201).send(passkey)
    }
  )

  fastify.get(
    '/me/passkeys',
    {
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authorize({}),
      schema: {
        tags: ['passkeys'],
        summary: 'Your passkeys, oldest first',
        security: [{ bearerAuth: [] }],
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('Passkey')) }), ...errorResponses(401) },
      },
    },
    async (request) => ({ items: await fastify.passkeys.list(request.user.sub) })
  )

  fastify.patch(
    '/me/passkeys/:id',
    {
      preHandler: fastify.authorize({}),
      schema: {
        tags: ['passkeys'],
        summary: 'Rename one of your passkeys',
        security: [{ bearerAuth: [] }],
        params: PasskeyParams,
        body: PasskeyRenameRequest,
        response: { 200: Type.Ref('Passkey'), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => fastify.passkeys.rename({ userId: request.user.sub, passkeyId: request.params.id, name: request.body.name, ip: request.ip })
  )

  fastify.delete(
    '/me/passkeys/:id',
    {
      preHandler: fastify.authorize({ recentAuthentication: true }),
      schema: {
        tags: ['passkeys'],
        summary: 'Delete one of your passkeys',
        description: 'Needs a recent authentication. Every session signed in with the passkey (as the first factor or a password login\'s second step) is ended.',
        security: [{ bearerAuth: [] }],
        params: PasskeyParams,
        response: { 204: Type.Null(), ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      await fastify.passkeys.delete({ userId: request.user.sub, passkeyId: request.params.id, ip: request.ip })
      return reply.code(204).send(null)
    }
  )

  fastify.post(
    '/me/passkeys/step-up-options',
    {
      // An admin signed in with a password steps up with a passkey to reach the rest.
      config: { secondFactorEnrolment: true },
      preHandler: fastify.authorize({}),
      schema: {
        tags: ['passkeys'],
        summary: 'Start a step-up with one of your passkeys',
        description:
          'PublicKeyCredentialRequestOptionsJSON with your passkeys in allowCredentials and user verification required; its challenge (single use, 5 minutes) is bound to you, for the step-up grant. 404 passkey_not_found when you have none.',
        security: [{ bearerAuth: [] }],
        response: { 200: RequestOptionsJSON, ...errorResponses(401, 404) },
      },
    },
    async (request) => fastify.passkeys.stepUpOptions(request.user.sub)
  )
}

export default passkeys
