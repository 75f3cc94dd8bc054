import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { foldEmail } from '../accounts/accounts.js'
import { ApiError } from '../../errors.js'
import { AuditQuery, UserPatch, UsersQuery } from './schemas.js'
import { OutboxQuery } from '../email/schemas.js'
import { errorResponses } from '../../http/error-schemas.js'
import { SecondFactorsReset } from '../second-factors/schemas.js'
import { page } from '../../shared/pagination-schemas.js'
import { Uuid } from '../../shared/input-formats.js'

const UserParams = Type.Object({ id: Uuid })
const security = [{ bearerAuth: [] }]

/**
 * The admin API (DESIGN §3.8): admins' access tokens only; every write also
 * needs a recent authentication (DESIGN §3.12), reads do not.
 */
const admin: FastifyPluginAsyncTypebox = async (fastify) => {
  const read = fastify.authorize({ role: 'admin' })
  const write = fastify.authorize({ role: 'admin', recentAuthentication: true })
  fastify.addHook('preHandler', function adminAccess (request, reply, done) {
    return (request.method === 'GET' ? read : write).call(this, request, reply, done)
  })
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
        security,
        querystring: UsersQuery,
        response: { 200: page(Type.Ref('User')), ...errorResponses(400, 401, 403) },
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

  fastify.post(
    '/users/:id/password-reset',
    {
      schema: {
        tags: ['admin'],
        summary: 'Email a user a password-reset link',
        description:
          'The user gets the same link as from POST /auth/password-reset; the admin never sees it, and no admin can see or set a password. Audited; limited like every request that sends email.',
        security,
        params: UserParams,
        response: { 202: Type.Ref('Accepted'), ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const user = await existingUser(request.params.id)
      await fastify.attemptLimits.email(request, user.email)
      await fastify.recovery.adminPasswordReset({ userId: user.id, actorId: actor(request), ip: request.ip })
      return reply.code(202).send({ status: 'accepted', message: 'A password-reset link was sent to the user.' })
    }
  )

  fastify.post(
    '/users/:id/mfa/reset',
    {
      schema: {
        tags: ['admin'],
        summary: "Remove all of a user's second factors",
        description:
          'For a user who lost their authenticator and recovery codes: removes every second factor (the authenticator, recovery codes, pending second steps) so that the password alone signs in again. ' +
          'Sessions stay. Audited with the admin as actor; the user is told by email.',
        security,
        params: UserParams,
        response: { 200: SecondFactorsReset, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const removed = await fastify.secondFactors.adminReset({ userId: request.params.id, actorId: actor(request), ip: request.ip })
      if (!removed) throw new ApiError('user_not_found', 'no user with this id')
      return { removed }
    }
  )

  fastify.get(
    '/outbox',
    {
      schema: {
        tags: ['admin'],
        summary: 'Email outbox: queued, sent and dead messages, newest first',
        description:
          'Delivery state of every message. In the development mailbox (no SMTP_URL, NODE_ENV not production) each message also comes rendered, links included; otherwise `rendered` is null, so that no admin can read a user\'s reset link.',
        security,
        querystring: OutboxQuery,
        response: { 200: page(Type.Ref('OutboxMessage')), ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => fastify.outbox.list({ ...request.query, ...(request.query.recipient ? { recipient: foldEmail(request.query.recipient) } : {}) })
  )
}

export default admin
