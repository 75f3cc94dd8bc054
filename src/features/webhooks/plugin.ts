import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { checkWebhookUrl, createDeliveryAgent } from './destinations.js'
import { WebhookDelivery, webhookQueue } from './webhook-delivery.js'
import { Webhooks } from './webhooks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Webhook endpoints and their deliveries (features/webhooks/webhooks.ts). */
    webhooks: Webhooks
    /** This instance's webhook worker (features/webhooks/webhook-delivery.ts). */
    webhookDelivery: WebhookDelivery
  }
}

/** Deliveries in one batch, and in flight at once: enough for 1,000/s to a receiver answering in a few ms. */
const BATCH_SIZE = 200
const CONCURRENCY = 64
const ATTEMPT_TIMEOUT_MS = 10_000
/**
 * A batch is ⌈BATCH_SIZE / CONCURRENCY⌉ waves of attempts, each bounded by
 * three timeouts (connect, headers, a pause in the body); the lease outlasts
 * that with room.
 */
const LEASE_SECONDS = Math.ceil((Math.ceil(BATCH_SIZE / CONCURRENCY) * 3 * ATTEMPT_TIMEOUT_MS) / 1000) + 60

async function webhooks (fastify: FastifyInstance) {
  const { config } = fastify
  const settings = config.webhooks
  const queueOptions = { maxAttempts: settings.maxAttempts, retryBaseSeconds: settings.retryBaseSeconds, leaseSeconds: LEASE_SECONDS, now: fastify.now }
  const registry = new Webhooks(fastify.db, webhookQueue(fastify.db, queueOptions), {
    secretKey: fastify.serverKeys.webhookSecretEncryption,
    checkUrl: (url) => checkWebhookUrl(url, { allowPrivateNetworks: settings.allowPrivateNetworks }),
    now: fastify.now,
  })
  const dispatcher = createDeliveryAgent({
    allowPrivateNetworks: settings.allowPrivateNetworks,
    connectTimeoutMs: ATTEMPT_TIMEOUT_MS,
    headersTimeoutMs: ATTEMPT_TIMEOUT_MS,
    bodyTimeoutMs: ATTEMPT_TIMEOUT_MS,
  })
  const worker = new WebhookDelivery(fastify.workerDb, registry, {
    ...queueOptions,
    batchSize: BATCH_SIZE,
    concurrency: CONCURRENCY,
    attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
    disableAfterMs: settings.disableAfterDays * 86_400_000,
    allowPrivateNetworks: settings.allowPrivateNetworks,
    dispatcher,
    log: fastify.log,
    onResult: (result) => fastify.metrics.webhookDelivery(result),
    notifyDisabled: async (tx, endpoint) => {
      const owner = endpoint.createdBy === null ? null : await tx.user.findUnique({ where: { id: endpoint.createdBy }, select: { email: true, disabled: true } })
      if (!owner || owner.disabled) return
      await fastify.outbox.enqueue(tx, {
        recipient: owner.email,
        template: 'webhook_disabled',
        data: { url: endpoint.url, webhookId: endpoint.id, failingSince: endpoint.failingSince.toISOString() },
      })
    },
  })
  fastify.decorate('webhooks', registry)
  fastify.decorate('webhookDelivery', worker)
  fastify.addHook('onReady', async () => worker.start(settings.pollIntervalMs))
  // Before the database closes (onClose hooks run in reverse registration order).
  fastify.addHook('onClose', async () => {
    await worker.stop()
    await dispatcher.close()
  })
}

export default fp(webhooks, { name: 'webhooks', dependencies: ['config', 'database', 'outbox', 'metrics'] })
