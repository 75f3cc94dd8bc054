import Type, { type Static, type TOptional, type TSchema } from 'typebox'
import type { Config } from '../../../config.js'
import { DomainError } from '../../../errors.js'
import { issueTokens, type GrantContext, type GrantDefinition, type GrantOutcome, type IssuedTokens } from './grant.js'
import { mfaOtpGrant } from '../../second-factors/mfa-otp-grant.js'
import { COMMON_PARAMS } from './params.js'
import { passkeyGrant } from '../../passkeys/passkey-grant.js'
import { passwordGrant } from './password.js'
import { refreshTokenGrant } from './refresh-token.js'
import { stepUpGrant } from './step-up.js'
import { authorizationCodeGrant } from '../../oauth/authorization-code-grant.js'
import { clientCredentialsGrant } from '../../oauth/client-credentials-grant.js'

export { grantedScope } from './scope.js'
export { issueTokens, openLoginSession, sessionRequest, type GrantContext, type GrantOutcome, type SessionOutcome, type IssuedTokens } from './grant.js'

/**
 * The token endpoint's grants (RFC 6749 §4.3, §6, §4.5), one module each;
 * this registry is the one list. A grant checks what its request proves and
 * yields a session and its live refresh token; `exchange` mints the access
 * token from that. A new grant is its module (grant.ts's defineGrant) and a
 * line here: the endpoint's body schema, the discovery metadata's
 * grant_types_supported and the cookie-named grants all follow from it.
 */
const REGISTERED = [passwordGrant, refreshTokenGrant, authorizationCodeGrant, clientCredentialsGrant, stepUpGrant, mfaOtpGrant, passkeyGrant] as const satisfies readonly GrantDefinition<any>[]

/** Every registered grant's parameters, by name (the registry refuses two schemas for one name). */
type RegisteredParams = UnionToIntersection<(typeof REGISTERED)[number]['params']>
type UnionToIntersection<U> = (U extends unknown ? (union: U) => void : never) extends (intersection: infer I) => void ? I : never
type TokenRequestProperties = typeof COMMON_PARAMS & { [Name in keyof RegisteredParams]: TOptional<RegisteredParams[Name] & TSchema> }

const GRANTS = new Map<string, GrantDefinition>(REGISTERED.map((grant) => [grant.type, grant as GrantDefinition]))
if (GRANTS.size !== REGISTERED.length) throw new Error('two grants share a grant_type')

/** Every grant_type the registry knows, in registration order (the body schema's). */
export const GRANT_TYPES = [...GRANTS.keys()]

/** grant_types_supported (RFC 8414): the password grant's family only with PASSWORD_GRANT=enabled. */
export function enabledGrantTypes (config: Pick<Config, 'passwordGrant'>): string[] {
  return REGISTERED.filter((grant) => config.passwordGrant || !('passwordGrantFamily' in grant && grant.passwordGrantFamily)).map((grant) => grant.type)
}

/** The grants whose refresh_token names a live session, read from the refresh cookie in cookie transport. */
export const SESSION_GRANT_TYPES = new Set(REGISTERED.filter((grant) => grant.namesSession === true).map((grant) => grant.type))

/**
 * POST /auth/token's body: one object for every grant, so that an
 * unsupported grant_type gets its own error code instead of a schema
 * failure; every grant's parameters, each optional (the grant says which it
 * misses); unrecognised parameters are ignored, as RFC 6749 §3.2 requires.
 */
export const TokenRequest = Type.Object(tokenRequestProperties(), { additionalProperties: true })
export type TokenRequest = Static<typeof TokenRequest>

function tokenRequestProperties (): TokenRequestProperties {
  const properties: Record<string, TSchema> = { ...COMMON_PARAMS }
  for (const grant of REGISTERED as readonly GrantDefinition[]) {
    for (const [name, schema] of Object.entries(grant.params) as [string, TSchema][]) {
      const known = properties[name]
      // One name, one meaning: a second grant reading a parameter must read it as the first does.
      if (known !== undefined && JSON.stringify(known) !== JSON.stringify(Type.Optional(schema))) {
        throw new Error(`grant ${grant.type} gives parameter ${name} another schema`)
      }
      properties[name] = Type.Optional(schema)
    }
  }
  return properties as TokenRequestProperties
}

/** Runs the grant a token request names and issues its tokens. */
export async function exchange (params: TokenRequest, context: GrantContext): Promise<IssuedTokens> {
  const grant: GrantDefinition | undefined = GRANTS.get(params.grant_type)
  // OAuth 2.1 removes the password grant; where it is off it is unknown here, as is its family (DESIGN §3.4).
  if (!grant || (grant.passwordGrantFamily === true && !context.config.passwordGrant)) {
    throw new DomainError('unsupported_grant_type', `grant_type must be one of: ${enabledGrantTypes(context.config).join(', ')}`)
  }
  // RFC 6749 §5.2: a client uses only the grants it is registered for.
  if (!context.client.grantTypes.includes(grant.type)) {
    throw new DomainError('unauthorized_client', `client ${context.client.id} is not registered for ${grant.type}`)
  }
  const outcome: GrantOutcome = await grant.handle(params, context)
  return issueTokens(outcome, context)
}
