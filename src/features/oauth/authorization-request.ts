import { jwtVerify, SignJWT } from 'jose'
import type { Client } from '../clients/clients.js'
import { OPENID_SCOPES } from '../clients/clients.js'
import { ACR_MFA } from '../../shared/authentication-methods.js'
import { oauthErrorDescription } from '../../errors.js'

/**
 * The authorization request (OAuth 2.1 §4.1.1, OIDC Core §3.1.2.1) once
 * checked: what the hosted pages carry from one step to the next, signed, so
 * that no step can be entered with parameters the first did not check.
 */
export interface AuthorizationRequest {
  clientId: string
  redirectUri: string
  scopes: string[]
  state?: string
  nonce?: string
  codeChallenge: string
  prompt: Prompt[]
  maxAge?: number
  loginHint?: string
  acrValues: string[]
}

export type Prompt = 'none' | 'login' | 'consent' | 'select_account'
const PROMPTS: readonly string[] = ['none', 'login', 'consent', 'select_account']
/** The acr values this provider can meet (acr_values_supported). */
export const ACR_VALUES_SUPPORTED = [ACR_MFA]

/** A failure the client must not be redirected for (RFC 6749 §4.1.2.1): the user sees a page. */
export interface PageError { kind: 'page'; message: string }
/** A failure told to the client at its redirect URI, with state and iss. */
export interface RedirectError { kind: 'redirect'; error: string; description: string; redirectUri: string; state?: string }

type Query = Record<string, string | string[] | undefined>

/** RFC 7636 §4.2: an S256 challenge is the base64url of 32 bytes. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

/**
 * Reads GET /oauth/authorize's query for `client` (null: unknown). An
 * unknown client, a missing or unregistered redirect URI, or a parameter
 * repeated among them gets a page; every other problem goes back to the
 * registered redirect URI.
 */
export function readAuthorizationRequest (
  query: Query,
  client: Client | null,
  allowsRedirectUri: (client: Client, uri: string) => boolean
): AuthorizationRequest | PageError | RedirectError {
  const one = (name: string): string | undefined | null => {
    const value = query[name]
    if (Array.isArray(value)) return null
    return value === '' ? undefined : value
  }
  const clientId = one('client_id')
  if (clientId === null) return { kind: 'page', message: 'client_id appears more than once' }
  if (!clientId || !client) return { kind: 'page', message: 'this application is not known here (unknown client_id)' }
  const redirectUri = one('redirect_uri')
  if (redirectUri === null) return { kind: 'page', message: 'redirect_uri appears more than once' }
  if (!redirectUri) return { kind: 'page', message: 'the request names no redirect_uri' }
  if (!allowsRedirectUri(client, redirectUri)) return { kind: 'page', message: 'the redirect_uri is not registered for this application' }
  if (!client.grantTypes.includes('authorization_code')) return { kind: 'page', message: 'this application may not use the authorization code flow' }

  const state = one('state')
  const fail = (error: string, description: string): RedirectError => ({
    kind: 'redirect', error, description, redirectUri, ...(typeof state === 'string' ? { state } : {}),
  })
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) return fail('invalid_request', `${name} appears more than once (OAuth 2.1 section 3.1)`)
  }
  // No parameter is repeated from here on.
  const get = (name: string): string | undefined => {
    const value = query[name]
    return typeof value === 'string' && value !== '' ? value : undefined
  }
  if (get('request') !== undefined) return fail('request_not_supported', 'request objects are not supported')
  if (get('request_uri') !== undefined) return fail('request_uri_not_supported', 'request_uri is not supported')
  if (get('registration') !== undefined) return fail('registration_not_supported', 'the registration parameter is not supported')
  const responseType = get('response_type')
  if (!responseType) return fail('invalid_request', 'response_type is required')
  if (responseType !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported')
  const responseMode = get('response_mode')
  if (responseMode !== undefined && responseMode !== 'query') return fail('invalid_request', 'only response_mode=query is supported')

  const codeChallenge = get('code_challenge')
  const method = get('code_challenge_method')
  if (!codeChallenge) return fail('invalid_request', 'code_challenge is required: PKCE with S256 (OAuth 2.1 section 4.1.1)')
  if (method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256; plain is not accepted')
  if (!S256_CHALLENGE.test(codeChallenge)) return fail('invalid_request', 'code_challenge must be the base64url SHA-256 of the verifier (43 characters)')

  const scopes = [...new Set((get('scope') ?? '').split(' ').filter(Boolean))]
  const allowed = new Set([...OPENID_SCOPES, ...client.scopes])
  const refused = scopes.filter((scope) => !allowed.has(scope))
  if (refused.length > 0) return fail('invalid_scope', `scope not allowed for this application: ${refused.join(' ')}`)

  const prompt = (get('prompt') ?? '').split(' ').filter(Boolean)
  if (prompt.some((value) => !PROMPTS.includes(value))) return fail('invalid_request', `prompt must be among ${PROMPTS.join(', ')}`)
  if (prompt.includes('none') && prompt.length > 1) return fail('invalid_request', 'prompt=none cannot be combined with another value')
  const maxAgeText = get('max_age')
  if (maxAgeText !== undefined && !/^\d{1,9}$/.test(maxAgeText)) return fail('invalid_request', 'max_age must be a number of seconds')
  const nonce = get('nonce')
  if (nonce !== undefined && nonce.length > 512) return fail('invalid_request', 'nonce is too long')
  if (typeof state === 'string' && state.length > 2048) return fail('invalid_request', 'state is too long')
  const loginHint = get('login_hint')

  return {
    clientId,
    redirectUri,
    scopes,
    ...(typeof state === 'string' ? { state } : {}),
    ...(typeof nonce === 'string' ? { nonce } : {}),
    codeChallenge,
    prompt: prompt as Prompt[],
    ...(maxAgeText !== undefined ? { maxAge: Number(maxAgeText) } : {}),
    ...(typeof loginHint === 'string' ? { loginHint: loginHint.slice(0, 320) } : {}),
    acrValues: (get('acr_values') ?? '').split(' ').filter(Boolean),
  }
}

/** How long the pages of one authorization may take. */
const INTERACTION_TTL_SECONDS = 15 * 60
const INTERACTION_ALG = 'HS256'

/**
 * Seals a checked request into the pages' hidden `interaction` field: a JWS
 * under a key derived from SECRET_KEY, bound to the browser's CSRF cookie,
 * so it cannot be altered or handed to another browser.
 */
export async function sealInteraction (key: Buffer, request: AuthorizationRequest, csrf: string, now: number): Promise<string> {
  const iat = Math.floor(now / 1000)
  return new SignJWT({ req: request, csrf })
    .setProtectedHeader({ alg: INTERACTION_ALG, typ: 'authorization-request+jwt' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + INTERACTION_TTL_SECONDS)
    .sign(key)
}

/** The request sealed in `interaction` for this browser, or null (tampered, expired, another browser's). */
export async function openInteraction (key: Buffer, interaction: string, csrf: string, now: number): Promise<AuthorizationRequest | null> {
  try {
    const { payload } = await jwtVerify<{ req: AuthorizationRequest; csrf: string }>(interaction, key, {
      algorithms: [INTERACTION_ALG],
      typ: 'authorization-request+jwt',
      currentDate: new Date(now),
    })
    return payload.csrf === csrf && typeof payload.req === 'object' ? payload.req : null
  } catch {
    return null
  }
}

/** The redirect that answers an authorization request: the parameters, and iss (RFC 9207), added to the redirect URI's own query. */
export function redirectTo (redirectUri: string, params: Record<string, string | undefined>, issuer: string): string {
  const url = new URL(redirectUri)
  if (params.error_description !== undefined) params = { ...params, error_description: oauthErrorDescription(params.error_description) }
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value)
  url.searchParams.append('iss', issuer)
  return url.toString()
}
