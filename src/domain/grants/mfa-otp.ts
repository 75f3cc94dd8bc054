import { DomainError } from '../../errors.js'
import { AMR, GRANT_TYPE_PREFIX, combineMethods } from '../authentication-methods.js'
import { oneTimeCodeOf } from '../second-factors.js'
import { openLoginSession, type Grant } from './index.js'

/**
 * The second step of a login with a second factor (DESIGN §3.12), an RFC
 * 6749 §4.5 extension grant in this service's own namespace: the mfa_token
 * the password grant answered with mfa_required, and a TOTP code (`otp`) or
 * a recovery code (`recovery_code`). The token is spent once, for the
 * client and transport it was issued for; the session opens only if the
 * account is still as the password check found it. Both codes are one-time
 * passwords (RFC 8176 otp): with the password, mfa.
 */
export const MFA_OTP_GRANT_TYPE = `${GRANT_TYPE_PREFIX}mfa-otp`

export const mfaOtpGrant: Grant = async (params, context) => {
  if (!params.mfa_token) throw new DomainError('invalid_request', 'the mfa-otp grant needs mfa_token')
  const code = oneTimeCodeOf(params)
  const { login, scope } = await context.secondFactors.completeLogin(params.mfa_token, code, {
    clientId: context.client.id,
    transport: context.transport,
    ip: context.origin.ip,
    purpose: 'login',
    spendAttempt: context.spendOneTimeCodeAttempt,
  })
  return openLoginSession(context, login, scope, combineMethods([], [AMR.password, AMR.otp]))
}
