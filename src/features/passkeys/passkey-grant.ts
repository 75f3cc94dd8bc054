import Value from 'typebox/value'
import { DomainError } from '../../errors.js'
import { AuthenticationResponseJSON, MAX_CREDENTIAL_JSON_LENGTH } from './schemas.js'
import { GRANT_TYPE_PREFIX } from '../../shared/authentication-methods.js'
import { defineGrant, openLoginSession } from '../tokens/grants/grant.js'
import { CREDENTIAL } from '../tokens/grants/params.js'
import { grantedScope } from '../tokens/grants/scope.js'

export const PASSKEY_GRANT_TYPE = `${GRANT_TYPE_PREFIX}passkey`

/**
 * Sign-in with a passkey (DESIGN §3.12), an RFC 6749 §4.5 extension grant:
 * `credential` is the assertion navigator.credentials.get() returned over a
 * challenge from POST /auth/passkey/options, as a JSON object, or as a JSON
 * string in a form body. A passkey with user verification is two factors:
 * the session's amr holds hwk or swk, user, and mfa.
 */
export const passkeyGrant = defineGrant({
  type: PASSKEY_GRANT_TYPE,
  passwordGrantFamily: true,
  params: { credential: CREDENTIAL },
  handle: async (params, context) => {
    const credential = parseCredential(params.credential)
    const scope = grantedScope(params.scope, context.client.scopes)
    await context.spendPasskeyAttempt()
    const { login, amr, passkeyId } = await context.passkeys.signIn(credential, context.origin.ip)
    return openLoginSession(context, login, scope, amr, passkeyId)
  },
})

/** The assertion of a token request's `credential` (an object, or its JSON text in a form body); invalid_request otherwise. */
export function parseCredential (value: unknown): AuthenticationResponseJSON {
  if (value === undefined) throw new DomainError('invalid_request', 'the passkey grant needs credential: the assertion of navigator.credentials.get()')
  let credential = value
  if (typeof value === 'string') {
    if (value.length > MAX_CREDENTIAL_JSON_LENGTH) throw new DomainError('invalid_request', `credential is longer than ${MAX_CREDENTIAL_JSON_LENGTH} characters`)
    try {
      credential = JSON.parse(value)
    } catch {
      throw new DomainError('invalid_request', 'credential is not JSON')
    }
  }
  if (!Value.Check(AuthenticationResponseJSON, credential)) {
    throw new DomainError('invalid_request', 'credential is not an authentication response (AuthenticationResponseJSON)')
  }
  return credential
}
