import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { IssuerUnavailableError, ResourceAuthError } from './errors.js'
import type { UserAuth } from './types.js'

/** RFC 9068 §2.1: the `typ` of a JWT access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt'

/** RFC 9068 §2.2 requires these; `sid` is this platform's session id, which the auth object carries. */
const REQUIRED_CLAIMS = ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'client_id', 'sid']

export interface AccessTokenVerifierOptions {
  issuer: string
  audience: string | readonly string[]
  algorithms: readonly string[]
  clockToleranceSeconds: number
  getKey: JWTVerifyGetKey
  now: () => number
  realm: string | undefined
}

/**
 * Verifies an RFC 9068 access token offline: algorithm in the pinned list
 * (checked before any key is looked up, so `none` and HS* with a public key
 * never get that far), signature by a key the issuer publishes (chosen by kid;
 * jku, x5u and embedded jwk headers are ignored), typ at+jwt, iss, aud, exp,
 * nbf, iat not in the future, and the claims this platform's tokens carry.
 * Throws ResourceAuthError (invalid_token) or IssuerUnavailableError.
 */
export async function verifyAccessToken (token: string, options: AccessTokenVerifierOptions): Promise<Omit<UserAuth, 'introspected'>> {
  const nowMs = options.now()
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(token, options.getKey, {
      issuer: options.issuer,
      audience: [...(typeof options.audience === 'string' ? [options.audience] : options.audience)],
      algorithms: [...options.algorithms],
      typ: ACCESS_TOKEN_TYP,
      requiredClaims: REQUIRED_CLAIMS,
      clockTolerance: options.clockToleranceSeconds,
      currentDate: new Date(nowMs),
    }))
  } catch (error) {
    if (error instanceof IssuerUnavailableError) throw error
    throw invalid(describe(error), options.realm, error)
  }
  if (typeof payload.iat !== 'number' || payload.iat > nowMs / 1000 + options.clockToleranceSeconds) {
    throw invalid('the access token is not yet valid', options.realm)
  }
  const { sub, sid, client_id: clientId, jti, scope, role, exp, amr, auth_time: authTime, acr } = payload as Record<string, unknown>
  if (
    typeof sub !== 'string' || sub === '' ||
    typeof sid !== 'string' || sid === '' ||
    typeof clientId !== 'string' ||
    typeof jti !== 'string' ||
    typeof exp !== 'number' ||
    (scope !== undefined && typeof scope !== 'string') ||
    (role !== undefined && typeof role !== 'string') ||
    (amr !== undefined && !(Array.isArray(amr) && amr.every((method) => typeof method === 'string'))) ||
    (authTime !== undefined && typeof authTime !== 'number') ||
    (acr !== undefined && typeof acr !== 'string')
  ) {
    throw invalid('the access token has malformed claims', options.realm)
  }
  return {
    kind: 'user',
    userId: sub,
    role: role as string | undefined,
    scopes: splitScope(scope as string | undefined),
    sessionId: sid,
    clientId,
    tokenId: jti,
    expiresAt: exp,
    amr: Object.freeze([...((amr as string[] | undefined) ?? [])]),
    authTime: authTime as number | undefined,
    acr: acr as string | undefined,
  }
}

export function splitScope (scope: string | undefined): string[] {
  return scope ? scope.split(' ').filter(Boolean) : []
}

function invalid (description: string, realm: string | undefined, cause?: unknown): ResourceAuthError {
  return new ResourceAuthError('invalid_token', description, { realm, cause })
}

/** A short, fixed description per failure class: nothing from the token is echoed back. */
function describe (error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the access token expired'
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'the access token is not yet valid'
    if (error.reason === 'missing') return `the access token lacks the ${error.claim} claim`
    return `the access token's ${error.claim} is not accepted here`
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the access token\'s algorithm is not accepted'
  if (error instanceof errors.JWKSNoMatchingKey) return 'the access token is signed by an unknown key'
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the access token\'s signature is invalid'
  return 'the access token is malformed'
}
