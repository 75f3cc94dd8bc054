import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync } from 'fastify'
import Type from 'typebox'
import { ApiError } from '../../errors.js'
import { AdminUserPage, AuditQuery, UserPatch, UsersQuery } from './schemas.js'
import { errorResponses } from '../../http/error-schemas.js'
import { page } from '../../shared/pagination-schemas.js'
import { Uuid } from '../../shared/input-formats.js'

export const UserParams = Type.Object({ id: Uuid })
export const ADMIN_SECURITY = [{ bearerAuth: [] }]
const security = ADMIN_SECURITY

/**
 * The admin API (DESIGN §3.8), mounted at /admin: admins' access tokens
 * only; every write also needs a recent authentication (DESIGN §3.12), reads
 * do not. Other capabilities' admin routes (a feature's `adminRoutes`) are
 * registered inside this scope, so the rule holds for them too.
 */
export function adminApi (featureRoutes: FastifyPluginAsync[]): FastifyPluginAsyncTypebox {
  return async (fastify) => {
    const read = fastify.authorize({ role: 'admin' })
    const write = fastify.authorize({ role: 'admin', recentAuthentication: true })
    fastify.addHook('preHandler', function adminAccess (request, reply, done) {
      return (request.method === 'GET' ? read : write).call(this, request, reply, done)
    })
    await fastify.register(usersAndAudit)
    for (const routes of featureRoutes) await fastify.register(routes)
  }
}

/** Users, their sessions, and the audit log. */
const usersAndAudit: FastifyPluginAsyncTypebox = async (fastify) => {
  const { administration } = fastify
  const actor = (request: { principal: { userId: string } | null }) => request.principal!.userId

  async function existingUser (id: string) {
    const user = await administration.getUser(id)
    if (!user) throw new ApiError('user_not_found', 'no user with this id')
    return user
  }

  fastify.get(
    '/users',
    {
      schema: {
        tags: ['admin'],
        summary: 'Users, newest first, searchable by email',
        description: 'Each user with their last sign-in and second factors; the page with the number of users the search matches in all.',
        security,
        querystring: UsersQuery,
        response: { 200: AdminUserPage, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => administration.listUsers(request.query)
  )

  fastify.get(
    '/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'A user',
        security,
        params: UserParams,
        response: { 200: Type.Ref('User'), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => existingUser(request.params.id)
  )

  fastify.patch(
    '/users/:id',
    {
      schema: {
        tags: ['admin'],
        summary: "Change a user's role or disable/enable them",
        description: "Disabling revokes all the user's sessions; their access tokens stop working on this service within a second.",
        security,
        params: UserParams,
        body: UserPatch,
        response: { 200: Type.Ref('User'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const user = await administration.updateUser({ actorId: actor(request), userId: request.params.id, ...request.body, ip: request.ip })
      if (!user) throw new ApiError('user_not_found', 'no user with this id')
      return user
    }
  )

  fastify.get(
    '/users/:id/sessions',
    {
      schema: {
        tags: ['admin'],
        summary: "A user's live sessions",
        security,
        params: UserParams,
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('Session')) }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      await existingUser(request.params.id)
      const sessions = await fastify.sessions.listLive(request.params.id)
      const own = request.principal?.kind === 'access_token' ? request.principal.sessionId : null
      return { items: sessions.map((session) => ({ ...session, current: session.id === own })) }
    }
  )

  fastify.delete(
    '/users/:id/sessions',
    {
      schema: {
        tags: ['admin'],
        summary: "Revoke all of a user's sessions",
        security,
        params: UserParams,
        response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await existingUser(request.params.id)
      await administration.revokeSessions({ actorId: actor(request), userId: request.params.id, ip: request.ip })
      return reply.code(204).send(null)
    }
  )

  fastify.delete(
    '/sessions/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Revoke one session',
        security,
        params: UserParams,
        response: { 204: Type.Null(), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const revoked = await administration.revokeSessions({ actorId: actor(request), sessionId: request.params.id, ip: request.ip })
      if (revoked.length === 0) throw new ApiError('session_not_found', 'no live session with this id')
      return reply.code(204).send(null)
    }
  )

  fastify.get(
    '/audit-events',
    {
      schema: {
        tags: ['admin'],
        summary: 'Audit events, newest first',
        description: "Each event with the current addresses of its user and actor. Filter by the user's id or address, the type, and a time range.",
        security,
        querystring: AuditQuery,
        response: { 200: page(Type.Ref('AuditEvent')), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { since, until, ...rest } = request.query
      return administration.auditEvents({
        ...rest,
        since: since === undefined ? undefined : new Date(since),
        until: until === undefined ? undefined : new Date(until),
      })
    }
  )
}
