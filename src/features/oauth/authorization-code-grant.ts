import Type from 'typebox'
import { DomainError } from '../../errors.js'
import { defineGrant, type SessionOutcome } from '../tokens/grants/grant.js'
import { lifetimesFor } from '../tokens/clients.js'
import { issueIdToken } from './id-tokens.js'

const WHY: Record<string, string> = {
  unknown: 'the authorization code is not valid',
  expired: 'the authorization code has expired',
  reused: 'the authorization code was already used; what it issued is revoked',
  client_mismatch: 'the authorization code was issued to another client',
  redirect_uri_mismatch: 'redirect_uri differs from the authorization request\'s',
  pkce_failed: 'code_verifier does not match the code_challenge',
  sign_in_ended: 'the sign-in behind this code has ended',
}

/**
 * RFC 6749 §4.1.3 with OAuth 2.1's PKCE (§4.1.3, RFC 7636 §4.5): spends the
 * code and starts the client's session (DESIGN §3.5) with the sign-in the
 * code carries, its methods and time, in one statement with the code's
 * spending (SessionStore.startFromCode). The browser session
 * the code came from must still be live, so a sign-out, a password change or
 * a disabling in the code's minute ends it too. A refresh token is returned when
 * offline_access was granted or the client is first-party; an ID token when
 * openid was.
 */
export const authorizationCodeGrant = defineGrant({
  type: 'authorization_code',
  params: {
    code: Type.String({ maxLength: 256 }),
    redirect_uri: Type.String({ maxLength: 2000, description: 'authorization_code: the authorization request\'s redirect_uri (none for a code of the authorization challenge endpoint)' }),
    code_verifier: Type.String({ maxLength: 256, description: 'authorization_code: the PKCE verifier (RFC 7636)' }),
  },
  handle: async (params, context): Promise<SessionOutcome> => {
    if (!params.code) throw new DomainError('invalid_request', 'the authorization_code grant needs code and code_verifier')
    // A request presenting a code spends it, whatever else it lacks: a code never gets a second try.
    const wellFormedVerifier = params.code_verifier !== undefined && /^[A-Za-z0-9._~-]{43,128}$/.test(params.code_verifier)
    const exchanged = await context.authorizationCodes.exchange(
      params.code,
      // OAuth 2.1 §4.1.3 and §10.2: redirect_uri, when sent, must be the authorization request's; a 2.1 client
      // sends none (PKCE binds the code), nor does a code of the authorization challenge endpoint have one.
      { clientId: context.client.id, redirectUri: params.redirect_uri, codeVerifier: wellFormedVerifier ? params.code_verifier! : '' },
      {
        lifetimes: { user: lifetimesFor(context.config, context.client, 'user'), admin: lifetimesFor(context.config, context.client, 'admin') },
        context: context.origin,
      }
    )
    if (params.code_verifier === undefined) throw new DomainError('invalid_request', 'code_verifier is required (PKCE); the code is spent')
    if (!wellFormedVerifier) throw new DomainError('invalid_grant', 'code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1); the code is spent')
    if (!exchanged.ok) throw new DomainError('invalid_grant', WHY[exchanged.reason] ?? 'the authorization code is not valid')
    const { grant, login, started } = exchanged
    const scopes = grant.scope.split(' ')
    const outcome: SessionOutcome = {
      grant: started.grant,
      refreshToken: started.refreshToken,
      scope: grant.scope,
      withholdRefreshToken: !context.client.firstParty && !scopes.includes('offline_access'),
    }
    if (!scopes.includes('openid')) return outcome
    const { accessTokenTtlSeconds } = lifetimesFor(context.config, context.client, started.grant.role)
    const user = login.user
    return {
      ...outcome,
      idToken: (accessToken) => issueIdToken(context.keys, {
        issuer: context.config.issuer,
        clientId: context.client.id,
        userId: user.id,
        // The browser session at this service; a code without one (the challenge endpoint) names the session it started.
        sid: grant.browserSessionId ?? started.grant.sessionId,
        nonce: grant.nonce,
        authTime: grant.authTime,
        amr: grant.amr,
        accessToken,
        email: scopes.includes('email') ? { email: user.email, verified: user.emailVerifiedAt !== null } : undefined,
        ttlSeconds: accessTokenTtlSeconds,
        now: context.now,
      }),
    }
  },
})
