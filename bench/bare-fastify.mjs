// Figure 1's headline baseline: a bare Fastify (the project's own, from
// node_modules) in a process of its own, started by bench/lib.ts
// startBareFastify with the node flags of `npm start`. One route,
// `GET /users/me`, answers the JSON body the service answers
// (BENCH_BARE_BODY, the service's own response, so the bytes on the wire
// match) with no hook, no logger and no authentication: the distance to it
// is everything the service adds to Fastify. BENCH_BARE_HEADERS (a JSON
// object), when set, adds those response headers to every answer
// (bench/profile.ts's `headers` target: what the service's own headers cost).
//
// IPC: tells the parent {type: 'listening', port}; answers
// {type: 'cpu-usage', id} and {type: 'cpu-profile', id, on} like
// bench/service-hooks.mjs.
import Fastify from 'fastify'
import { answerCpuMessage } from './cpu-profile.mjs'

const body = JSON.parse(process.env.BENCH_BARE_BODY ?? '{}')
const headers = process.env.BENCH_BARE_HEADERS ? Object.freeze(JSON.parse(process.env.BENCH_BARE_HEADERS)) : undefined
const app = Fastify()
if (headers) {
  app.get('/users/me', async (_request, reply) => {
    reply.headers(headers)
    return body
  })
} else {
  app.get('/users/me', async () => body)
}

process.on('message', async (message) => {
  const answer = (reply) => process.send?.({ id: message.id, ...reply })
  try {
    if (!(await answerCpuMessage(message, answer))) answer({ error: `unknown message ${message.type}` })
  } catch (error) {
    answer({ error: String(error?.stack ?? error) })
  }
})
process.channel?.unref()

// A normal exit, so that --cpu-prof (BENCH_SERVICE_NODE_ARGS) writes its profile.
process.once('SIGTERM', () => {
  app.close().then(() => process.exit(0))
})

await app.listen({ port: 0, host: '127.0.0.1' })
process.send?.({ type: 'listening', port: app.server.address().port })
