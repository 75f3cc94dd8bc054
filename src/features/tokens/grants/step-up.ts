import { DomainError } from '../../../errors.js'
import { AMR, GRANT_TYPE_PREFIX, combineMethods } from '../../../shared/authentication-methods.js'
import { oneTimeCodeOf } from '../../second-factors/second-factors.js'
import { defineGrant } from './grant.js'
import { CREDENTIAL, OTP, PASSWORD, RECOVERY_CODE, REFRESH_TOKEN } from './params.js'
import { parseCredential } from '../../passkeys/passkey-grant.js'

export const STEP_UP_GRANT_TYPE = `${GRANT_TYPE_PREFIX}step-up`

/**
 * A step-up (DESIGN §3.12, RFC 9470 §4): inside a live session, the user
 * proves a factor again and the session's authentication is raised, with a
 * fresh access token and the next refresh token of the same session; no new
 * session. The session is named by its live refresh token (in the body, or
 * the cookie in cookie transport). A user with a second factor steps up with
 * it: a password alone would renew the time of a level it does not prove.
 */
export const stepUpGrant = defineGrant({
  type: STEP_UP_GRANT_TYPE,
  params: { refresh_token: REFRESH_TOKEN, password: PASSWORD, otp: OTP, recovery_code: RECOVERY_CODE, credential: CREDENTIAL },
  namesSession: true,
  handle: async (params, context) => {
    if (!params.refresh_token) throw new DomainError('invalid_request', 'the step-up grant needs the session\'s refresh_token (or its cookie)')
    const proofs = [params.password !== undefined, params.otp !== undefined, params.recovery_code !== undefined, params.credential !== undefined]
    if (proofs.filter(Boolean).length !== 1) {
      throw new DomainError('invalid_request', 'the step-up grant needs exactly one of password, otp, recovery_code or credential')
    }
    const presented = context.sessions.readRefreshToken(params.refresh_token)
    const session = presented && (await context.sessions.liveGrant({ sessionId: presented.sessionId }))
    if (!session || session.clientId !== context.client.id) throw new DomainError('invalid_grant', 'the refresh token is invalid')
    const audit = { ip: context.origin.ip, sessionId: session.sessionId }
    let proved: string[] | null
    if (params.password !== undefined) {
      if (await context.secondFactors.hasSecondFactor(session.userId)) {
        throw new DomainError('invalid_request', 'this account has a second factor: step up with it (otp, recovery_code or credential)')
      }
      const user = await context.accounts.findPublic(session.userId)
      if (!user) throw new DomainError('invalid_grant', 'the refresh token is invalid')
      await context.spendPasswordAttempt(user.email)
      proved = (await context.accounts.verifyPassword(session.userId, params.password, audit)) ? [AMR.password] : null
    } else if (params.credential !== undefined) {
      // An assertion over a challenge of POST /users/me/passkeys/step-up-options, by one of this user's passkeys.
      proved = (await context.passkeys.verifyForUser(session.userId, parseCredential(params.credential), audit.ip)).amr
    } else {
      const code = oneTimeCodeOf(params)
      const accepted = await context.secondFactors.verifyOneTimeCode(session.userId, code, { ip: audit.ip, purpose: 'step_up', spendAttempt: context.spendOneTimeCodeAttempt })
      proved = accepted ? [AMR.otp] : null
    }
    if (!proved) throw new DomainError('invalid_grant', 'the factor was not accepted')
    const raised = { amr: combineMethods(session.amr, proved), authTime: new Date(context.now) }
    const result = await context.sessions.stepUp(params.refresh_token, context.client.id, context.origin, raised)
    if (!result.ok) throw new DomainError('invalid_grant', result.reason === 'reused' ? 'the refresh token was already used; the session is revoked' : 'the refresh token is invalid')
    return { grant: result.grant, refreshToken: result.refreshToken, scope: result.grant.scope }
  },
})
