import { DomainError } from '../../../errors.js'
import type { RotationFailure } from '../../sessions/sessions.js'
import { defineGrant } from './grant.js'
import { REFRESH_TOKEN } from './params.js'
import { grantedScope } from './scope.js'

const REFRESH_FAILURES: Record<RotationFailure, string> = {
  unknown: 'the refresh token is invalid',
  client_mismatch: 'the refresh token was issued to another client',
  expired: 'the refresh token expired',
  revoked: 'the refresh token was revoked',
  user_disabled: 'the refresh token is invalid',
  reused: 'the refresh token was already used; the session is revoked',
}

/**
 * RFC 6749 §6: rotates the refresh token (SessionStore.rotate: single use,
 * the grace window, reuse detection). A narrower scope may be asked for,
 * never a wider one.
 */
export const refreshTokenGrant = defineGrant({
  type: 'refresh_token',
  params: { refresh_token: REFRESH_TOKEN },
  namesSession: true,
  handle: async (params, context) => {
    if (!params.refresh_token) throw new DomainError('invalid_request', 'refresh_token is missing')
    const result = await context.sessions.rotate(params.refresh_token, context.client.id, context.origin)
    if (!result.ok) throw new DomainError('invalid_grant', REFRESH_FAILURES[result.reason])
    const scope = params.scope === undefined ? result.grant.scope : grantedScope(params.scope, result.grant.scope.split(' '))
    return { grant: result.grant, refreshToken: result.refreshToken, scope }
  },
})
