import t from 'tap'
import { ConfigError, loadConfig } from '../../../src/config.js'
import { TEST_ENV } from '../../helpers/app.js'

/** METRICS_PORT, METRICS_HOST and OTEL_EXPORTER_OTLP_ENDPOINT: defaults, and bad values named at start. */

function problemOf (env: Record<string, string>): string | null {
  try {
    loadConfig({ ...TEST_ENV, ...env })
    return null
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
}

t.test('unset: no metrics listener, no tracing; METRICS_HOST defaults to HOST', async (t) => {
  const config = loadConfig(TEST_ENV)
  t.same(config.metrics, { port: undefined, host: '127.0.0.1' })
  t.equal(config.otlpEndpoint, undefined)
  t.same(loadConfig({ ...TEST_ENV, HOST: '0.0.0.0', METRICS_PORT: '9464' }).metrics, { port: 9464, host: '0.0.0.0' })
  t.same(loadConfig({ ...TEST_ENV, METRICS_PORT: '0', METRICS_HOST: '10.0.0.5' }).metrics, { port: 0, host: '10.0.0.5' })
  t.equal(loadConfig({ ...TEST_ENV, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).otlpEndpoint, 'http://collector:4318')
})

t.test('bad values stop the start, each named', async (t) => {
  for (const value of ['-1', '65536', '9464.5', 'metrics', '0x10']) {
    t.match(problemOf({ METRICS_PORT: value }), /METRICS_PORT: /, `METRICS_PORT=${value}`)
  }
  t.match(problemOf({ PORT: '3000', METRICS_PORT: '3000' }), /METRICS_PORT: must differ from PORT \(3000\)/, 'never the public port')
  t.equal(problemOf({ PORT: '0', METRICS_PORT: '0' }), null, 'both 0: two free ports')
  t.match(problemOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), /OTEL_EXPORTER_OTLP_ENDPOINT: /, 'a URL')
})
