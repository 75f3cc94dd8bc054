import type { FastifyInstance, FastifyRequest } from 'fastify'
import { invalidToken } from '../errors.js'
import type { PublicUser } from '../features/accounts/schemas.js'

/** The user an authenticated request acts for; 401 when the account is gone since its token was issued. */
export async function signedInUser (fastify: FastifyInstance, request: FastifyRequest): Promise<PublicUser> {
  const user = await fastify.accounts.findPublic(request.principal!.userId)
  if (!user) throw invalidToken('the user no longer exists')
  return user
}
