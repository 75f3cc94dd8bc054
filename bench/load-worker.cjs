'use strict'
// Load generator for the benchmarks, run as a child process (bench/lib.ts
// runLoad and bench/refresh.ts), so that neither its CPU nor its memory is
// counted in the service's process. Receives its options over IPC, answers
// with the statuses and per-request latencies (fractional milliseconds).
//
// mode 'plain': fixed request, bodies (if any) used round robin.
// mode 'refresh': every request carries a live refresh token from a pool and
// its successor goes back into the pool.
const autocannon = require('autocannon')

process.once('message', (o) => {
  const statuses = {}
  const latencies = []
  const pool = o.tokens ? o.tokens.slice() : null
  const bodies = o.bodies || null
  let next = 0
  let ok = 0
  let retryable = 0
  let refused = 0
  const request = {
    method: o.method || 'GET',
    path: o.path,
    headers: o.headers || {},
    setupRequest (req, context) {
      context.t = process.hrtime.bigint()
      if (pool) {
        const token = pool.pop()
        if (token === undefined) throw new Error('no live refresh token left')
        context.token = token
        return { ...req, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: token }) }
      }
      if (bodies) return { ...req, body: bodies[next++ % bodies.length] }
      return req
    },
    onResponse (status, body, context) {
      statuses[status] = (statuses[status] || 0) + 1
      latencies.push(Number(process.hrtime.bigint() - context.t) / 1e6)
      if (!pool) return
      if (status === 200) {
        ok++
        pool.push(JSON.parse(body).refresh_token)
      } else if (status === 429 || status >= 500) {
        retryable++
        pool.push(context.token) // not rotated: still live
      } else {
        refused++ // a chain lost; the pool has spares
      }
    },
  }
  const options = {
    url: o.url,
    connections: o.connections,
    duration: o.duration,
    pipelining: 1,
    timeout: 10,
    ...(o.overallRate ? { overallRate: o.overallRate } : {}),
    requests: [request],
  }
  autocannon(options, (error, result) => {
    process.send(
      {
        error: error ? String(error) : null,
        statuses,
        latencies,
        ok,
        retryable,
        refused,
        seconds: result ? result.duration : 0,
        errors: result ? result.errors + result.timeouts : 0,
      },
      () => process.exit(0)
    )
  })
})
