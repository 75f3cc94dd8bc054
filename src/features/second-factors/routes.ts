import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { signedInUser } from '../../http/signed-in-user.js'
import { FactorList, RecoveryCodesResponse, TotpConfirmRequest, TotpEnrolmentResponse, TotpRemovalRequest } from './schemas.js'

const security = [{ bearerAuth: [] }]

/**
 * The signed-in user's second factors (DESIGN §3.12), under /users/me/mfa.
 * Enrolment adds a way into the account: it needs a recent authentication
 * and, on an account that already has a factor, a step-up with it (a stale
 * or stolen token must not plant an authenticator whose codes only the
 * intruder has). It stays open to an admin who must still enrol a first
 * factor (REQUIRE_MFA_FOR_ADMINS); removal and new recovery codes need a
 * recent authentication.
 */
const mfa: FastifyPluginAsyncTypebox = async (fastify) => {
  const { secondFactors } = fastify
  const signedIn = fastify.authorize({})
  const recent = fastify.authorize({ recentAuthentication: true })
  const addsFactor = fastify.authorize({ addsFactor: true })

  const codeContext = (request: FastifyRequest, purpose: string) => ({
    ip: request.ip,
    purpose,
    spendAttempt: (userId: string) => fastify.attemptLimits.oneTimeCode(request, userId),
  })

  fastify.get(
    '/me/mfa',
    {
      preHandler: signedIn,
      config: { secondFactorEnrolment: true },
      schema: {
        tags: ['second factors'],
        summary: 'Your second factors',
        security,
        response: { 200: FactorList, ...errorResponses(401) },
      },
    },
    async (request) => secondFactors.listFactors(request.user.sub)
  )

  fastify.post(
    '/me/mfa/totp',
    {
      preHandler: addsFactor,
      config: { secondFactorEnrolment: true },
      schema: {
        tags: ['second factors'],
        summary: 'Start setting up an authenticator app (TOTP, RFC 6238)',
        description:
          'Answers the secret, its otpauth:// URI and a QR code of it; nothing is active until POST /users/me/mfa/totp/confirm. ' +
          'A new call replaces a pending set-up; 409 totp_already_enabled when one is active (remove it first). A pending set-up lasts an hour. ' +
          'Needs a recent authentication (401 insufficient_user_authentication otherwise) and, on an account with a passkey, one proven in this session (acr mfa: step up with it).',
        security,
        response: { 200: TotpEnrolmentResponse, ...errorResponses(401, 409) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const enrolment = await secondFactors.startTotpEnrolment(await signedInUser(fastify, request), request.ip)
      return { secret: enrolment.secret, otpauth_uri: enrolment.otpauthUri, qr_code: enrolment.qrCode }
    }
  )

  fastify.post(
    '/me/mfa/totp/confirm',
    {
      preHandler: addsFactor,
      config: { secondFactorEnrolment: true },
      schema: {
        tags: ['second factors'],
        summary: 'Activate the authenticator with its first code; get recovery codes',
        description:
          'The code proves the app holds the secret; from now on the password grant answers mfa_required. Answers ten recovery codes, shown this once. ' +
          '400 invalid_otp for a wrong code (audited, and limited by OTP_RATE_LIMIT_PER_USER); 404 totp_not_enrolled without a pending set-up. Sign in again for a token with the second factor. ' +
          'Needs a recent authentication, as the set-up does; the account\'s address is told.',
        security,
        body: TotpConfirmRequest,
        response: { 200: RecoveryCodesResponse, ...errorResponses(400, 401, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const recoveryCodes = await secondFactors.confirmTotp(request.user.sub, request.body.code, codeContext(request, 'enrolment'))
      return { recoveryCodes }
    }
  )

  fastify.delete(
    '/me/mfa/totp',
    {
      preHandler: recent,
      schema: {
        tags: ['second factors'],
        summary: 'Remove the authenticator and its recovery codes',
        description:
          'Needs a recent authentication and, in the body, a current code or the password (each draws on its budget). Revokes no session. Audited; 403 invalid_credentials for a wrong proof.',
        security,
        body: TotpRemovalRequest,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const user = await signedInUser(fastify, request)
      const { body } = request
      if ('password' in body) await fastify.attemptLimits.passwordCheck(request, user.email)
      else await fastify.attemptLimits.oneTimeCode(request, user.id)
      await secondFactors.removeTotp(user.id, 'password' in body ? { password: body.password } : { otp: body.code }, { ip: request.ip })
      return reply.code(204).send(null)
    }
  )

  fastify.post(
    '/me/mfa/recovery-codes',
    {
      preHandler: recent,
      schema: {
        tags: ['second factors'],
        summary: 'Replace your recovery codes',
        description: 'Needs a recent authentication and an active authenticator. The old codes stop working; the new ones are shown this once.',
        security,
        response: { 200: RecoveryCodesResponse, ...errorResponses(401, 404) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return { recoveryCodes: await secondFactors.regenerateRecoveryCodes(request.user.sub, request.ip) }
    }
  )
}

export default mfa
