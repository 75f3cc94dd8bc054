import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EVENTS_SUPPORTED, POLL_METHOD, PUSH_METHOD } from './events.js'
import { TransmitterConfiguration } from './schemas.js'

/** Transmitter metadata changes only with the deployment. */
const METADATA_MAX_AGE_SECONDS = 3600

/**
 * SSF 1.0 §7.1 transmitter configuration metadata, under /.well-known: where
 * the streams are managed, how SETs are delivered and verified (the JWKS of
 * the access tokens), and how receivers authenticate: OAuth 2.0 (RFC 6749,
 * a client_credentials token) or the service's API keys.
 */
const ssfConfigurationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { issuer } = fastify.config
  const metadata: TransmitterConfiguration = {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    delivery_methods_supported: [PUSH_METHOD, POLL_METHOD],
    configuration_endpoint: `${issuer}/ssf/stream`,
    status_endpoint: `${issuer}/ssf/status`,
    verification_endpoint: `${issuer}/ssf/verify`,
    // A session-revoked event names the session: a receiver that cannot act on it must discard the event (SSF 1.0 §3.4).
    critical_subject_members: ['session'],
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }, { spec_urn: 'urn:token-auth:api-key' }],
    default_subjects: 'ALL',
    events_supported: [...EVENTS_SUPPORTED],
  }
  fastify.get(
    '/ssf-configuration',
    {
      config: { publicCache: true },
      schema: {
        tags: ['discovery'],
        summary: 'Shared Signals transmitter configuration (SSF 1.0 section 7)',
        description: 'How the platform\'s services subscribe to security events (session revoked, credential change) and verify them.',
        response: { 200: TransmitterConfiguration },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${METADATA_MAX_AGE_SECONDS}`)
      return metadata
    }
  )
}

export default ssfConfigurationRoutes
