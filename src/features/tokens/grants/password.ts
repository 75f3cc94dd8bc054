import { DomainError } from '../../../errors.js'
import { defineGrant, sessionRequest } from './grant.js'
import { PASSWORD, USERNAME } from './params.js'
import { grantedScope } from './scope.js'

/**
 * RFC 6749 §4.3: the resource owner's email and password. Every attempt
 * spends the account's password budget first; a wrong password, an unknown
 * or disabled account, and a login that lost a race with a change of the
 * account all answer the same invalid_grant. An account with a second
 * factor gets mfa_required and the token of the second step (mfa-otp.ts).
 */
export const passwordGrant = defineGrant({
  type: 'password',
  passwordGrantFamily: true,
  params: { username: USERNAME, password: PASSWORD },
  handle: async (params, context) => {
    if (!params.username || params.password === undefined) {
      throw new DomainError('invalid_request', 'the password grant needs username and password')
    }
    const scope = grantedScope(params.scope, context.client.scopes)
    await context.spendPasswordAttempt(params.username)
    const login = await context.accounts.passwordLogin(params.username, params.password, sessionRequest(context, scope), (verified) =>
      context.secondFactors.requireSecondStep(verified, { clientId: context.client.id, transport: context.transport, scope, ip: context.origin.ip }))
    if (!login) throw new DomainError('invalid_grant', 'invalid username or password')
    return { grant: login.grant, refreshToken: login.refreshToken, scope }
  },
})
