import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import { serverOptions } from '../src/app.js'

/**
 * The server options' logger (src/app.ts): every line of a request carries
 * its id, and what is logged through the request's logger is still
 * redacted, with the request logger built as requestLogger builds it.
 */

function capturingServer () {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const options = serverOptions({ logLevel: 'info', trustProxy: false })
  const server = Fastify({ ...options, logger: { ...(options.logger as object), stream } })
  server.get('/secret', async (request) => {
    request.log.info({ body: { password: 'hunter2', token: 'abc' }, user: 'someone' }, 'handled')
    return { ok: true }
  })
  server.get('/quiet', { logLevel: 'warn' }, async (request) => {
    request.log.info('not logged at warn')
    request.log.warn({ key: { key: 'k' } }, 'logged')
    return { ok: true }
  })
  return { server, lines }
}

t.test("every line of a request carries the request's id, also one a proxy sent", async (t) => {
  const { server, lines } = capturingServer()
  t.teardown(() => server.close())
  await server.inject({ url: '/secret', headers: { 'x-request-id': 'edge-42.a:b' } })
  const own = lines.filter((line) => line.reqId === 'edge-42.a:b')
  t.same(
    own.map((line) => line.msg),
    ['incoming request', 'handled', 'request completed'],
    'the incoming, handler and completed lines, each with the id'
  )
  lines.length = 0
  await server.inject({ url: '/secret', headers: { 'x-request-id': 'no "quotes" allowed' } })
  t.equal(lines.length, 3)
  const generated = lines[0]!.reqId
  t.match(generated, /^[0-9a-f-]{36}$/, 'an unacceptable incoming id is replaced by a UUID')
  t.ok(
    lines.every((line) => line.reqId === generated),
    'the same id on every line'
  )
})

t.test("what a handler logs through the request's logger is redacted", async (t) => {
  const { server, lines } = capturingServer()
  t.teardown(() => server.close())
  await server.inject({ url: '/secret' })
  const handled = lines.find((line) => line.msg === 'handled')!
  t.same(handled.body, { password: '[redacted]', token: '[redacted]' }, 'nested secrets redacted')
  t.equal(handled.user, 'someone', 'the rest kept')
  t.notMatch(JSON.stringify(lines), /hunter2|"abc"/, 'no secret anywhere in the log')
})

t.test("a route's own log level still applies to its request logger", async (t) => {
  const { server, lines } = capturingServer()
  t.teardown(() => server.close())
  await server.inject({ url: '/quiet', headers: { 'x-request-id': 'quiet-1' } })
  t.same(
    lines.map((line) => line.msg),
    ['logged'],
    'only the warning: no info line of that route, not even the request lines'
  )
  t.equal(lines[0]!.reqId, 'quiet-1')
  t.same(lines[0]!.key, { key: '[redacted]' })
})
