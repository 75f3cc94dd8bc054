import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errorResponses } from '../../http/error-schemas.js'
import { authenticateReceiver } from './receivers.js'
import {
  PollParams,
  PollRequest,
  PollResponse,
  StreamCreateRequest,
  StreamIdQuery,
  StreamQuery,
  StreamStatus,
  StreamStatusRequest,
  StreamUpdateRequest,
  VerificationRequest,
} from './schemas.js'
import type { Receiver } from './streams.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The receiver a security-event route acts for (set by its preHandler). */
    ssfReceiver: Receiver | null
  }
}

const TAGS = ['security-events']
const SECURITY: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKey: [] }]
const WHO =
  'For the platform\'s services: a client_credentials access token with the events scope, or an admin\'s API key with it. ' +
  'A receiver sees and changes only its own streams.'

/**
 * The SSF 1.0 stream management API (§8.1) and the RFC 8936 poll endpoint,
 * under /ssf, at the paths of SSF 1.0's examples: /ssf/stream (the
 * configuration endpoint), /ssf/status, /ssf/verify, and each poll stream's
 * /ssf/poll/{stream_id}. Listed in /.well-known/ssf-configuration.
 */
const ssfRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { streams, poller } = fastify.securityEvents
  fastify.decorateRequest('ssfReceiver', null)
  fastify.addHook('preHandler', async (request) => {
    request.ssfReceiver = await authenticateReceiver(fastify, request)
  })
  const receiver = (request: { ssfReceiver: Receiver | null }) => request.ssfReceiver!

  fastify.post(
    '/stream',
    {
      schema: {
        tags: TAGS,
        summary: 'Create an event stream (SSF 1.0 section 8.1.1.1)',
        description: `${WHO} Without delivery the stream is polled (urn:ietf:rfc:8936) at its delivery.endpoint_url. ` +
          'A push stream (urn:ietf:rfc:8935) names the receiver\'s endpoint_url, which must resolve to public addresses (as webhooks). ' +
          'A new stream starts with the session-revoked events of the last access-token lifetime.',
        security: SECURITY,
        body: StreamCreateRequest,
        response: { 201: Type.Ref('SsfStreamConfiguration'), ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await streams.create(receiver(request), request.body))
  )

  fastify.get(
    '/stream',
    {
      schema: {
        tags: TAGS,
        summary: 'Read a stream\'s configuration, or every stream\'s (SSF 1.0 section 8.1.1.2)',
        description: `${WHO} With stream_id: that stream; without: a list of the receiver's streams.`,
        security: SECURITY,
        querystring: StreamQuery,
        response: { 200: Type.Union([Type.Ref('SsfStreamConfiguration'), Type.Array(Type.Ref('SsfStreamConfiguration'))]), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => (request.query.stream_id === undefined ? streams.list(receiver(request)) : streams.get(receiver(request), request.query.stream_id))
  )

  fastify.patch(
    '/stream',
    {
      schema: {
        tags: TAGS,
        summary: 'Change a stream\'s configuration (SSF 1.0 section 8.1.1.3)',
        description: `${WHO} Members left out stay as they are; transmitter-supplied members sent must match.`,
        security: SECURITY,
        body: StreamUpdateRequest,
        response: { 200: Type.Ref('SsfStreamConfiguration'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => streams.update(receiver(request), request.body, false)
  )

  fastify.put(
    '/stream',
    {
      schema: {
        tags: TAGS,
        summary: 'Replace a stream\'s configuration (SSF 1.0 section 8.1.1.4)',
        description: `${WHO} Receiver-supplied members left out are deleted; transmitter-supplied members sent must match.`,
        security: SECURITY,
        body: StreamUpdateRequest,
        response: { 200: Type.Ref('SsfStreamConfiguration'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => streams.update(receiver(request), request.body, true)
  )

  fastify.delete(
    '/stream',
    {
      schema: {
        tags: TAGS,
        summary: 'Delete a stream and the events queued on it (SSF 1.0 section 8.1.1.5)',
        description: WHO,
        security: SECURITY,
        querystring: StreamIdQuery,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await streams.delete(receiver(request), request.query.stream_id)
      return reply.code(204).send(null)
    }
  )

  fastify.get(
    '/status',
    {
      schema: {
        tags: TAGS,
        summary: 'Read a stream\'s status (SSF 1.0 section 8.1.2.1)',
        description: WHO,
        security: SECURITY,
        querystring: StreamIdQuery,
        response: { 200: StreamStatus, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => streams.status(receiver(request), request.query.stream_id)
  )

  fastify.post(
    '/status',
    {
      schema: {
        tags: TAGS,
        summary: 'Enable, pause or disable a stream (SSF 1.0 section 8.1.2.2)',
        description: `${WHO} Paused: events are held until the stream is enabled again. Disabled: nothing is held; events still queued are dropped.`,
        security: SECURITY,
        body: StreamStatusRequest,
        response: { 200: StreamStatus, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => streams.setStatus(receiver(request), request.body.stream_id, request.body.status, request.body.reason)
  )

  fastify.post(
    '/verify',
    {
      schema: {
        tags: TAGS,
        summary: 'Ask for a verification event on a stream (SSF 1.0 section 8.1.4.2)',
        description: `${WHO} The event (its sub_id the stream, its state echoed) is queued like any other; at most one request per min_verification_interval (429 otherwise).`,
        security: SECURITY,
        body: VerificationRequest,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      await streams.verify(receiver(request), request.body.stream_id, request.body.state)
      return reply.code(204).send(null)
    }
  )

  fastify.post(
    '/poll/:streamId',
    {
      schema: {
        tags: TAGS,
        summary: 'Poll a stream for Security Event Tokens (RFC 8936)',
        description: `${WHO} Acknowledges (ack) or refuses (setErrs) SETs received, then answers up to maxEvents SETs keyed by jti. ` +
          'With returnImmediately false (the default) an empty poll waits up to 5 seconds and answers within a fraction of a second of a new event. ' +
          'A SET not acknowledged within 30 seconds is handed out again.',
        security: SECURITY,
        params: PollParams,
        body: Type.Optional(PollRequest),
        response: { 200: PollResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const stream = await streams.pollStream(receiver(request), request.params.streamId)
      await streams.polled(stream)
      const abandoned = new AbortController()
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abandoned.abort()
      })
      return poller.poll(stream, request.body ?? {}, abandoned.signal)
    }
  )
}

export default ssfRoutes
