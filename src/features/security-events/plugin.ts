import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { maxAccessTokenTtlSeconds } from '../tokens/clients.js'
import { checkWebhookUrl, createDeliveryAgent } from '../webhooks/destinations.js'
import { SetPoller } from './poll.js'
import { SetPusher } from './push.js'
import { SetSigner } from './sets.js'
import { SsfStreams } from './streams.js'

export interface SecurityEvents {
  streams: SsfStreams
  poller: SetPoller
  pusher: SetPusher
  signer: SetSigner
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The security-event streams (features/security-events): management, poll and push delivery. */
    securityEvents: SecurityEvents
  }
}

/** A SET handed to a poller comes back due after this long unacknowledged. */
export const POLL_LEASE_SECONDS = 30
/** The longest a poll waits for an event (RFC 8936 long polling). */
export const LONG_POLL_MS = 5_000
/** How often waiting polls look for new events: a poll answers within about this long of a commit. */
export const POLL_CHECK_INTERVAL_MS = 200
const DEFAULT_MAX_EVENTS = 100
const PUSH_BATCH_SIZE = 20
const PUSH_TIMEOUT_MS = 10_000
const PUSH_CONNECT_TIMEOUT_MS = 10_000
/** Pushes of a batch run concurrently: the lease outlasts one attempt's timeouts with room to spare. */
const PUSH_LEASE_SECONDS = Math.ceil((PUSH_CONNECT_TIMEOUT_MS + 2 * PUSH_TIMEOUT_MS) / 1000) + 60

async function securityEvents (fastify: FastifyInstance) {
  const { config } = fastify
  const { webhooks } = config
  const signer = new SetSigner(fastify.keys, config.issuer)
  const streams = new SsfStreams(fastify.db, {
    issuer: config.issuer,
    encryptionKey: fastify.serverKeys.ssfPushAuthorizationEncryption,
    accessTokenTtlSeconds: maxAccessTokenTtlSeconds(config),
    checkPushEndpoint: async (url) => {
      const check = await checkWebhookUrl(url, { allowPrivateNetworks: webhooks.allowPrivateNetworks })
      return check.ok ? null : check.reason
    },
    now: fastify.now,
  })
  const poller = new SetPoller(fastify.db, signer, {
    leaseSeconds: POLL_LEASE_SECONDS,
    longPollMs: LONG_POLL_MS,
    checkIntervalMs: POLL_CHECK_INTERVAL_MS,
    defaultMaxEvents: DEFAULT_MAX_EVENTS,
    now: fastify.now,
    log: fastify.log,
  })
  const agent = createDeliveryAgent({
    allowPrivateNetworks: webhooks.allowPrivateNetworks,
    connectTimeoutMs: PUSH_CONNECT_TIMEOUT_MS,
    headersTimeoutMs: PUSH_TIMEOUT_MS,
    bodyTimeoutMs: PUSH_TIMEOUT_MS,
  })
  const pusher = new SetPusher(fastify.workerDb, signer, (streamId, sealed) => streams.authorizationHeader(streamId, sealed), agent, {
    maxAttempts: webhooks.maxAttempts,
    retryBaseSeconds: webhooks.retryBaseSeconds,
    batchSize: PUSH_BATCH_SIZE,
    leaseSeconds: PUSH_LEASE_SECONDS,
    timeoutMs: PUSH_TIMEOUT_MS,
    allowPrivateNetworks: webhooks.allowPrivateNetworks,
    now: fastify.now,
    log: fastify.log,
  })
  fastify.decorate('securityEvents', { streams, poller, pusher, signer })
  fastify.addHook('onReady', async () => pusher.start(webhooks.pollIntervalMs))
  // Waiting polls answer at once, so that closing does not wait out their long poll.
  fastify.addHook('preClose', async () => poller.close())
  // Before the database closes (onClose hooks run in reverse registration order).
  fastify.addHook('onClose', async () => {
    await pusher.stop()
    await agent.close()
  })
}

export default fp(securityEvents, { name: 'security-events', dependencies: ['config', 'database', 'keys'] })
