import { DomainError } from '../../errors.js'
import { defineGrant, type ClientOutcome } from '../tokens/grants/grant.js'
import { grantedScope } from '../tokens/grants/scope.js'

/**
 * RFC 6749 §4.4: a confidential client acting for itself (the platform's
 * services calling each other). The token endpoint has authenticated the
 * client and checked that it is registered for this grant (registration
 * refuses it to public clients). sub is the client; no session, no refresh
 * token; every issue is audited.
 */
export const clientCredentialsGrant = defineGrant({
  type: 'client_credentials',
  params: {},
  handle: async (params, context): Promise<ClientOutcome> => {
    if (!context.client.confidential) throw new DomainError('unauthorized_client', 'client_credentials is for confidential clients')
    const scope = grantedScope(params.scope, context.client.scopes)
    await context.clients.recordTokenIssued(context.client.id, scope, context.origin.ip)
    return { clientToken: true, scope }
  },
})
