// Preloaded into the service process by the benchmarks
// (`node --import ./bench/service-hooks.mjs dist/src/server.js`, see
// bench/lib.ts startService), so that what is measured is the production
// entry point that `npm start` runs, unchanged. Through Fastify's
// `fastify.initialization` diagnostics channel it adds the one bench-only
// route (figure 1's baseline) to the instance server.ts builds, and it answers
// the bench over IPC:
//   {type: 'inject', id, request}  -> {id, statusCode, headers, body}: setup requests
//                                     (sign-ups, logins) without spending the
//                                     load generator's address budget
//   {type: 'stats', id}            -> {id, maxRssBytes, rssBytes, heapUsedBytes}
//   {type: 'loop-delay', id, on}   -> {id, maxMs, p99Ms}: event-loop delay
//                                     while `on` was true
//   {type: 'cpu-usage', id}        -> {id, cpuUs}: CPU time used so far
//   {type: 'cpu-profile', id, on}  -> V8's CPU profiler on and off
//                                     (both bench/cpu-profile.mjs)
// and tells the bench {type: 'listening', port} once the server listens.
import { subscribe } from 'node:diagnostics_channel'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { answerCpuMessage } from './cpu-profile.mjs'

let app
let loopDelay

subscribe('fastify.initialization', ({ fastify }) => {
  app = fastify
  fastify.get('/bench/bare', async () => ({ ok: true }))
  fastify.addHook('onListen', async function () {
    process.send?.({ type: 'listening', port: this.server.address().port })
  })
})

process.on('message', async (message) => {
  const answer = (body) => process.send?.({ id: message.id, ...body })
  try {
    if (message.type === 'inject') {
      const response = await app.inject(message.request)
      answer({ statusCode: response.statusCode, headers: Object.fromEntries(Object.entries(response.headers).map(([name, value]) => [name, String(value)])), body: response.body })
    } else if (message.type === 'stats') {
      const memory = process.memoryUsage()
      // getrusage's ru_maxrss: the kernel's peak resident set, in KiB.
      answer({ maxRssBytes: process.resourceUsage().maxRSS * 1024, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed })
    } else if (message.type === 'loop-delay') {
      if (message.on) {
        loopDelay = monitorEventLoopDelay({ resolution: 1 })
        loopDelay.enable()
        answer({})
      } else {
        loopDelay.disable()
        answer({ maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6 })
      }
    } else if (!(await answerCpuMessage(message, answer))) {
      answer({ error: `unknown message ${message.type}` })
    }
  } catch (error) {
    answer({ error: String(error?.stack ?? error) })
  }
})

// The IPC channel must not keep the service alive after server.ts closes it.
process.channel?.unref()
