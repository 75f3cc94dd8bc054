import type { IntrospectionResponse } from './schemas.js'
import type { AccessTokenClaims, ClientAccessTokenClaims } from './access-token-claims.js'
import { looksLikeJwt, verifyAccessToken, verifyClientAccessToken } from './access-tokens.js'
import type { ClientRegistry } from '../clients/clients.js'
import { looksLikeApiKey, type ApiKeyStore } from '../api-keys/api-keys.js'
import type { SessionStore } from '../sessions/sessions.js'
import type { KeyStore } from '../signing-keys/signing-keys.js'

const INACTIVE = { active: false } as const

/**
 * Whether a token is usable right now, as this service sees it: revocation,
 * disabled users and role changes count at once (unlike offline JWT checks).
 */
export async function introspect (
  token: string,
  deps: { keys: KeyStore; sessions: SessionStore; apiKeys: ApiKeyStore; clients: ClientRegistry; issuer: string; audience: string; now: number }
): Promise<IntrospectionResponse> {
  if (looksLikeApiKey(token)) {
    const key = await deps.apiKeys.verify(token, { touch: false })
    if (!key) return INACTIVE
    return {
      active: true,
      token_type: 'api_key',
      sub: key.userId,
      scope: key.scopes.join(' '),
      ...(key.expiresAt ? { exp: Math.floor(key.expiresAt.getTime() / 1000) } : {}),
    }
  }
  if (looksLikeJwt(token)) {
    const claims: AccessTokenClaims | null = await verifyAccessToken(deps.keys, token, {
      issuer: deps.issuer,
      audience: deps.audience,
      now: deps.now,
    })
    if (!claims) return introspectClientToken(token, deps)
    const grant = await deps.sessions.liveGrant({ sessionId: claims.sid })
    if (!grant || grant.userId !== claims.sub || grant.role !== claims.role) return INACTIVE
    return { ...activeAccessToken(claims), sid: claims.sid }
  }
  const grant = await deps.sessions.liveGrant({ refreshToken: token })
  if (!grant) return INACTIVE
  return {
    active: true,
    token_type: 'refresh_token',
    sub: grant.userId,
    scope: grant.scope,
    exp: Math.floor(grant.idleExpiresAt.getTime() / 1000),
    client_id: grant.clientId,
    sid: grant.sessionId,
  }
}

/** A client's own token (client_credentials) is usable while it is unexpired and its client still exists and may use the grant. */
async function introspectClientToken (token: string, deps: Parameters<typeof introspect>[1]): Promise<IntrospectionResponse> {
  const claims = await verifyClientAccessToken(deps.keys, token, { issuer: deps.issuer, audience: deps.audience, now: deps.now })
  if (!claims) return INACTIVE
  const client = await deps.clients.find(claims.client_id)
  if (!client || !client.grantTypes.includes('client_credentials')) return INACTIVE
  return activeAccessToken(claims)
}

/** RFC 7662 §2.2's answer for a usable access token, from its claims. */
function activeAccessToken (claims: ClientAccessTokenClaims): IntrospectionResponse {
  return {
    active: true,
    token_type: 'access_token',
    sub: claims.sub,
    scope: claims.scope,
    exp: claims.exp,
    iat: claims.iat,
    client_id: claims.client_id,
    iss: claims.iss,
    aud: claims.aud,
  }
}
