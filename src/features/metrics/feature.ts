import type { Feature } from '../feature.js'
import metricsPlugin from './plugin.js'

/**
 * Prometheus metrics (DESIGN §3.18): `fastify.metrics` for the capabilities
 * that count, and with METRICS_PORT the /metrics listener. First in
 * FEATURES, since the others count through it. No routes on the public
 * port, no catalogue. OpenTelemetry traces are ./tracing.ts, loaded by the
 * app only with OTEL_EXPORTER_OTLP_ENDPOINT.
 */
export const metrics: Feature = {
  name: 'metrics',
  plugins: [metricsPlugin],
}
