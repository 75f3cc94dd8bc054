import { randomUUID } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import Value from 'typebox/value'
import { AccessTokenClaims, ClientAccessTokenClaims } from './access-token-claims.js'
import { acrOf } from '../../shared/authentication-methods.js'
import type { SessionGrant } from '../sessions/sessions.js'
import { SIGNING_ALG, type KeyStore } from '../signing-keys/signing-keys.js'

/** RFC 9068 §2.1: the media type of JWT access tokens, in its short form. */
export const ACCESS_TOKEN_TYP = 'at+jwt'

/** A compact JWS (header.payload.signature): the shape of an access token, whether or not it verifies. */
export function looksLikeJwt (token: string): boolean {
  return token.split('.').length === 3
}

export function issueAccessToken (
  keys: KeyStore,
  input: { issuer: string; audience: string; grant: SessionGrant; ttlSeconds: number; now?: number }
): { accessToken: string; expiresIn: number } {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    aud: input.audience,
    sub: input.grant.userId,
    client_id: input.grant.clientId,
    sid: input.grant.sessionId,
    jti: randomUUID(),
    iat,
    exp: iat + input.ttlSeconds,
    scope: input.grant.scope,
    role: input.grant.role,
    amr: input.grant.amr,
    auth_time: Math.floor(input.grant.authTime.getTime() / 1000),
  }
  const acr = acrOf(input.grant.amr)
  if (acr !== undefined) claims.acr = acr
  const accessToken = keys.sign({ ...claims }, { typ: ACCESS_TOKEN_TYP })
  return { accessToken, expiresIn: input.ttlSeconds }
}

/**
 * A client's own access token (client_credentials, RFC 6749 §4.4): sub is
 * the client (RFC 9068 §2.2), and there is no session, role or user
 * authentication, so this service's user routes, which require sid, refuse it.
 */
export function issueClientAccessToken (
  keys: KeyStore,
  input: { issuer: string; audience: string; clientId: string; scope: string; ttlSeconds: number; now?: number }
): string {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  return keys.sign(
    { iss: input.issuer, aud: input.audience, sub: input.clientId, client_id: input.clientId, jti: randomUUID(), iat, exp: iat + input.ttlSeconds, scope: input.scope },
    { typ: ACCESS_TOKEN_TYP }
  )
}

/**
 * Verifies an access token with jose against the published keys: the second
 * opinion beside the request-side fast-jwt verifier, used by introspection.
 * Returns the claims, or null for any token this service would refuse.
 */
export async function verifyAccessToken (
  keys: KeyStore,
  token: string,
  expected: { issuer: string; audience: string; now?: number }
): Promise<AccessTokenClaims | null> {
  const payload = await verifiedPayload(keys, token, expected, AccessTokenClaims.required)
  return payload !== null && Value.Check(AccessTokenClaims, payload) ? payload : null
}

/** As verifyAccessToken, for a client's own token (client_credentials): sub is the client, and no sid. */
export async function verifyClientAccessToken (
  keys: KeyStore,
  token: string,
  expected: { issuer: string; audience: string; now?: number }
): Promise<ClientAccessTokenClaims | null> {
  const payload = await verifiedPayload(keys, token, expected, ClientAccessTokenClaims.required)
  if (payload === null || 'sid' in payload || !Value.Check(ClientAccessTokenClaims, payload)) return null
  return payload.sub === payload.client_id ? payload : null
}

async function verifiedPayload (keys: KeyStore, token: string, expected: { issuer: string; audience: string; now?: number }, requiredClaims: string[]): Promise<Record<string, unknown> | null> {
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), {
      issuer: expected.issuer,
      audience: expected.audience,
      typ: ACCESS_TOKEN_TYP,
      algorithms: [SIGNING_ALG],
      requiredClaims,
      ...(expected.now !== undefined ? { currentDate: new Date(expected.now) } : {}),
    })
    return payload
  } catch {
    return null
  }
}
