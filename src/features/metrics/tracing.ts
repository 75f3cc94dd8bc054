import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, propagation, trace } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * OpenTelemetry traces (DESIGN §3.18): a span for every request (and its
 * hooks and handler) through @fastify/otel, exported in batches over
 * OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT. The app imports this module only
 * when that variable is set, so without it no OpenTelemetry module is
 * loaded (src/app.ts). The exporter and the SDK read the other standard
 * variables themselves: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (overrides the
 * endpoint), OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
 * OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*,
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; OTEL_FASTIFY_IGNORE_PATHS
 * skips routes. Closing the app flushes the spans not yet sent.
 */
export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; traces go to its /v1/traces. */
  endpoint: string
}

/** The provider registered as the process's global one, if any: one app per process in production; tests build several. */
let globalProvider: NodeTracerProvider | null = null

async function tracing (fastify: FastifyInstance, options: TracingOptions) {
  const exporter = new OTLPTraceExporter(
    // The signal's own variable wins, as the OTLP exporter specification says; the exporter reads it itself.
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? {} : { url: tracesUrl(options.endpoint) }
  )
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'token-auth' }))
    .merge(detectResources({ detectors: [envDetector] }))
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] })
  // The context manager (AsyncLocalStorage) and the W3C propagators are the
  // process's: a span's children find it through them, and an incoming
  // traceparent continues the caller's trace.
  if (globalProvider === null) {
    provider.register()
    globalProvider = provider
  }
  const instrumentation = new FastifyOtelInstrumentation({
    // The path without its query: a query may carry an ID token (logout's id_token_hint) or an address (login_hint).
    requestHook: (span, request) => {
      span.setAttribute('url.path', request.url.split('?')[0] ?? '')
    },
  })
  instrumentation.setTracerProvider(provider)
  await fastify.register(instrumentation.plugin())

  fastify.addHook('onClose', async () => {
    // Sends what is still batched, then stops the exporter.
    await provider.shutdown().catch((error: unknown) => fastify.log.warn({ err: error }, 'tracing: the last spans could not be exported'))
    instrumentation.disable()
    if (globalProvider === provider) {
      trace.disable()
      context.disable()
      propagation.disable()
      globalProvider = null
    }
  })
  fastify.log.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? tracesUrl(options.endpoint) }, 'tracing: exporting OpenTelemetry traces')
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the traces' path is appended to it (OTLP exporter specification). */
export function tracesUrl (endpoint: string): string {
  return `${endpoint}${endpoint.endsWith('/') ? '' : '/'}v1/traces`
}

export default fp(tracing, { name: 'tracing' })
