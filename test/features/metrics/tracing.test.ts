import { spawn } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { tracesUrl } from '../../../src/features/metrics/tracing.js'
import { PROJECT_ROOT } from '../../../src/paths.js'
import { buildTestApp } from '../../helpers/app.js'

/**
 * OpenTelemetry traces (DESIGN §3.18): with OTEL_EXPORTER_OTLP_ENDPOINT the
 * app exports a span per request over OTLP/HTTP (JSON, POST /v1/traces) to a
 * loopback server standing in for the collector; without it, no module of
 * the SDK, the exporter or @fastify/otel loads (a child process builds the
 * app and lists every module it loaded); only the OpenTelemetry API, which
 * prom-client itself requires.
 */

interface OtlpValue { stringValue?: string; intValue?: string | number }
interface OtlpSpan { name: string; traceId: string; attributes: { key: string; value: OtlpValue }[] }
interface OtlpExport {
  resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[]
}

async function body (request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const raw = Buffer.concat(chunks)
  return request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
}

/** A loopback OTLP/HTTP collector: what was posted where, with which content type. */
async function collector () {
  const received: { path: string; contentType: string | undefined; body: Buffer }[] = []
  const server = createServer((request, response) => {
    body(request).then((payload) => {
      received.push({ path: request.url ?? '', contentType: request.headers['content-type'], body: payload })
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    }, () => response.writeHead(400).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

const attribute = (attributes: { key: string; value: OtlpValue }[], key: string) => {
  const value = attributes.find((a) => a.key === key)?.value
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue))
}

t.test('tracesUrl appends the signal\'s path to the base endpoint', async (t) => {
  t.equal(tracesUrl('http://collector:4318'), 'http://collector:4318/v1/traces')
  t.equal(tracesUrl('http://collector:4318/'), 'http://collector:4318/v1/traces')
  t.equal(tracesUrl('https://otel.example/base'), 'https://otel.example/base/v1/traces')
})

t.test('with OTEL_EXPORTER_OTLP_ENDPOINT a request\'s span reaches the collector, flushed when the app closes', async (t) => {
  const otlp = await collector()
  t.teardown(otlp.close)
  const built = await buildTestApp({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url })
  let closed = false
  t.teardown(async () => {
    if (!closed) await built.close()
  })
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const response = await built.app.inject({
    method: 'GET',
    url: '/health?secret=do-not-export',
    headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  })
  t.equal(response.statusCode, 200)
  await built.close()
  closed = true

  t.ok(otlp.received.length > 0, 'the exporter posted')
  const exports = otlp.received.filter((r) => r.path === '/v1/traces')
  t.equal(exports.length, otlp.received.length, 'to /v1/traces of the endpoint')
  t.match(exports[0]!.contentType, /^application\/json/, 'OTLP/HTTP JSON')
  const documents = exports.map((r) => JSON.parse(r.body.toString('utf8')) as OtlpExport)
  const resources = documents.flatMap((d) => d.resourceSpans.map((r) => r.resource))
  t.ok(resources.every((r) => attribute(r.attributes, 'service.name') === 'token-auth'), 'service.name token-auth')
  const spans = documents.flatMap((d) => d.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
  const request = spans.find((s) => s.name === 'request' && attribute(s.attributes, 'http.route') === '/health')
  t.ok(request, `a request span for /health among ${spans.map((s) => s.name).join(', ')}`)
  t.equal(attribute(request!.attributes, 'http.request.method'), 'GET')
  t.equal(attribute(request!.attributes, 'http.response.status_code'), 200)
  t.equal(attribute(request!.attributes, 'url.path'), '/health', 'the path without its query')
  t.equal(request!.traceId.toLowerCase(), traceId, 'the caller\'s traceparent continued')
  t.notOk(exports.some((r) => r.body.includes('do-not-export')), 'no query string exported')
})

t.test('without OTEL_EXPORTER_OTLP_ENDPOINT no OpenTelemetry module is loaded but the API prom-client requires; with it, they are', async (t) => {
  // The child builds the app twice: without the variable, then with it (its
  // spans sent to a collector that answers), so the second list shows the
  // check would see the modules were they loaded.
  const otlp = await collector()
  t.teardown(otlp.close)
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test/fixtures/loaded-modules.ts')], {
      cwd: PROJECT_ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        FIXTURE_ENV_FIRST: '{}',
        FIXTURE_ENV_SECOND: JSON.stringify({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
  t.equal(run.code, 0, run.stderr)
  type Loaded = { modules: string[]; requiredBy: string[] }
  const { first, second } = JSON.parse(run.stdout.trim().split('\n').pop()!) as { first: Loaded; second: Loaded }
  const otel = (modules: string[]) => modules.filter((m) => /[\\/]@opentelemetry[\\/]|[\\/]@fastify[\\/]otel[\\/]|metrics[\\/]tracing\.ts/.test(m))
  t.ok(first.modules.some((m) => /[\\/]prom-client[\\/]/.test(m)) && first.modules.some((m) => /[\\/]src[\\/]app\.ts/.test(m)), 'the list holds what the app loads')
  // prom-client requires the OpenTelemetry API (a no-op facade until an SDK
  // registers) for its exemplars, whenever it is loaded: that package, and
  // only from there, is the one exception.
  t.same(otel(first.modules).filter((m) => !/[\\/]@opentelemetry[\\/]api[\\/]/.test(m)), [], 'no OpenTelemetry SDK, exporter, resource or instrumentation module without the variable')
  t.ok(first.requiredBy.length > 0 && first.requiredBy.every((m) => /[\\/]node_modules[\\/]prom-client[\\/]/.test(m)), `the API required by prom-client only: ${first.requiredBy.join(', ')}`)
  t.ok(otel(second.modules).some((m) => /@fastify[\\/]otel/.test(m)), '@fastify/otel with it')
  t.ok(otel(second.modules).some((m) => /@opentelemetry[\\/]sdk-trace-node/.test(m)), 'the trace SDK with it')
  t.ok(otel(second.modules).some((m) => /@opentelemetry[\\/]exporter-trace-otlp-http/.test(m)), 'the OTLP exporter with it')
  t.ok(otlp.received.length > 0, 'and the second app exported its spans')
})
