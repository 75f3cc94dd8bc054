import { DomainError } from '../../errors.js'
import { AMR, GRANT_TYPE_PREFIX, combineMethods } from '../../shared/authentication-methods.js'
import { oneTimeCodeOf } from './second-factors.js'
import { defineGrant, openLoginSession } from '../tokens/grants/grant.js'
import { CREDENTIAL, MFA_TOKEN, OTP, RECOVERY_CODE } from '../tokens/grants/params.js'
import { parseCredential } from '../passkeys/passkey-grant.js'

/**
 * The second step of a login with a second factor (DESIGN §3.12), an RFC
 * 6749 §4.5 extension grant in this service's own namespace: the mfa_token
 * the password grant answered with mfa_required, and a TOTP code (`otp`), a
 * recovery code (`recovery_code`) or a passkey assertion (`credential`, over
 * options from POST /auth/mfa/passkey-options). The token is
 * spent once, for the client and transport it was issued for; the session
 * opens only if the account is still as the password check found it. Both
 * codes are one-time passwords (RFC 8176 otp); a passkey is a key (hwk or
 * swk); with the password, either is mfa.
 */
export const MFA_OTP_GRANT_TYPE = `${GRANT_TYPE_PREFIX}mfa-otp`

export const mfaOtpGrant = defineGrant({
  type: MFA_OTP_GRANT_TYPE,
  passwordGrantFamily: true,
  params: { mfa_token: MFA_TOKEN, otp: OTP, recovery_code: RECOVERY_CODE, credential: CREDENTIAL },
  handle: async (params, context) => {
    if (!params.mfa_token) throw new DomainError('invalid_request', 'the mfa-otp grant needs mfa_token')
    // An authorization challenge's auth_session is the same kind of token, but its flow ends in a code bound to
    // its PKCE challenge: it must not finish here, where tokens come without a code_verifier.
    const pending = await context.secondFactors.pendingLogin(params.mfa_token, { clientId: context.client.id, transport: context.transport })
    if (pending.codeChallenge !== null) throw new DomainError('invalid_grant', 'this token belongs to an authorization challenge: finish it at POST /oauth/authorize-challenge')
    const step = {
      clientId: context.client.id,
      transport: context.transport,
      ip: context.origin.ip,
      spendAttempt: context.spendOneTimeCodeAttempt,
    }
    if (params.credential !== undefined) {
      if (params.otp !== undefined || params.recovery_code !== undefined) {
        throw new DomainError('invalid_request', 'send exactly one of otp, recovery_code and credential')
      }
      const credential = parseCredential(params.credential)
      const { login, scope, assertion } = await context.secondFactors.completeLoginWithPasskey(
        params.mfa_token,
        (userId) => context.passkeys.verifySecondFactor(userId, credential, step.ip),
        step
      )
      return openLoginSession(context, login, scope, combineMethods([AMR.password], assertion.amr), assertion.passkeyId)
    }
    const code = oneTimeCodeOf(params)
    const { login, scope } = await context.secondFactors.completeLogin(params.mfa_token, code, { ...step, purpose: 'login' })
    return openLoginSession(context, login, scope, combineMethods([], [AMR.password, AMR.otp]))
  },
})
