import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildTestApp, json } from '../../helpers/app.js'
import { createTestDatabase } from '../../helpers/database.js'
import { bearer, signup } from '../../helpers/users.js'
import { adminReceiver, createStream, pollRequest, PUSH, SESSION_REVOKED, verifySet, type SetPayload } from './ssf.js'

/**
 * RFC 8935 push delivery: a receiver on loopback (WEBHOOK_ALLOW_PRIVATE_NETWORKS
 * lets the service reach it) gets each SET as application/secevent+jwt with
 * the Authorization header its stream named, verifies it with jose against
 * the JWKS and answers 202; a 400 with an RFC 8935 §2.3 error parks the SET
 * at once; any other answer is retried with backoff; a redirect is never
 * followed. Without WEBHOOK_ALLOW_PRIVATE_NETWORKS a loopback endpoint is
 * refused when the stream is created.
 */

interface Delivery {
  url: string
  headers: IncomingHttpHeaders
  body: string
  payload: SetPayload | null
}

/** A SET receiver: verifies what it gets, answers what `answer` says (202). */
class SetReceiver {
  readonly deliveries: Delivery[] = []
  answer: (delivery: Delivery) => { status: number; body?: unknown; headers?: Record<string, string> } = () => ({ status: 202 })
  private readonly server: Server
  private waiters: (() => void)[] = []

  constructor (private readonly verify: (set: string) => Promise<SetPayload | null>) {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        void this.verify(body).then((payload) => {
          const delivery = { url: request.url ?? '', headers: request.headers, body, payload }
          this.deliveries.push(delivery)
          const { status, body: answer, headers } = this.answer(delivery)
          response.writeHead(status, { ...(answer === undefined ? {} : { 'content-type': 'application/json' }), ...headers }).end(answer === undefined ? '' : JSON.stringify(answer))
          for (const wake of this.waiters.splice(0)) wake()
        })
      })
    })
  }

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return this
  }

  get url (): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`
  }

  async waitFor (count: number, timeoutMs = 5_000): Promise<void> {
    const started = Date.now()
    while (this.deliveries.length < count) {
      if (Date.now() - started > timeoutMs) throw new Error(`${this.deliveries.length} of ${count} deliveries after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

const database = await createTestDatabase()
const { app, clock, close } = await buildTestApp({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '50' }, { database })
// On its own database: sharing one, its push worker would also deliver (and refuse) the other's SETs.
const guarded = await buildTestApp({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' })
t.teardown(async () => {
  await guarded.close()
  await close()
  await database.drop()
})
const receiver = await adminReceiver(app)
let audience = ''
const setReceiver = await new SetReceiver(async (set) => {
  try {
    return (await verifySet(app, set, audience)).payload
  } catch {
    return null
  }
}).start()
t.teardown(() => setReceiver.stop())

const AUTHORIZATION = 'Bearer receiver-secret-0123456789'
const pushStream = await createStream(app, receiver, {
  delivery: { method: PUSH, endpoint_url: setReceiver.url, authorization_header: AUTHORIZATION },
  events_requested: [SESSION_REVOKED],
})
audience = pushStream.aud

async function logout (): Promise<string> {
  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  return user.sessionId
}

t.test('the stream as created: push to the receiver\'s URL; its Authorization header sealed, never shown', async (t) => {
  t.same(pushStream.delivery, { method: PUSH, endpoint_url: setReceiver.url })
  const row = await app.db.ssfStream.findUniqueOrThrow({ where: { id: pushStream.stream_id } })
  t.ok(row.authorizationHeaderEncrypted)
  t.notOk(Buffer.from(row.authorizationHeaderEncrypted!).toString('latin1').includes('receiver-secret'), 'not in clear')
  t.notMatch(JSON.stringify(pushStream), /receiver-secret/)
  t.equal((await pollRequest(app, receiver, pushStream.stream_id)).statusCode, 404, 'a push stream is not polled')
})

t.test('a SET is pushed, verified by the receiver with jose, and accepted (202)', async (t) => {
  const before = setReceiver.deliveries.length
  const sid = await logout()
  await setReceiver.waitFor(before + 1)
  const delivery = setReceiver.deliveries.at(-1)!
  t.equal(delivery.headers['content-type'], 'application/secevent+jwt')
  t.equal(delivery.headers.accept, 'application/json')
  t.equal(delivery.headers.authorization, AUTHORIZATION)
  t.ok(delivery.payload, 'the SET verifies against the JWKS')
  t.equal((delivery.payload!.sub_id.session as { id: string }).id, sid)
  const row = await app.db.securityEvent.findUniqueOrThrow({ where: { id: delivery.payload!.jti! } })
  for (let i = 0; i < 50 && !row.deliveredAt; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    Object.assign(row, await app.db.securityEvent.findUniqueOrThrow({ where: { id: delivery.payload!.jti! } }))
  }
  t.ok(row.deliveredAt, 'delivered')
  t.equal(row.attempts, 1)
})

t.test('refused with an RFC 8935 error: parked at once; another failure: retried with backoff', async (t) => {
  setReceiver.answer = () => ({ status: 400, body: { err: 'invalid_audience', description: 'not for us' } })
  let before = setReceiver.deliveries.length
  await logout()
  await setReceiver.waitFor(before + 1)
  const refusedJti = setReceiver.deliveries.at(-1)!.payload!.jti!
  await app.securityEvents.pusher.idle()
  const refused = await app.db.securityEvent.findUniqueOrThrow({ where: { id: refusedJti } })
  t.ok(refused.deadAt, 'dead after one attempt')
  t.equal(refused.lastError, 'refused by the receiver (invalid_audience: not for us)')

  setReceiver.answer = () => ({ status: 503 })
  before = setReceiver.deliveries.length
  await logout()
  await setReceiver.waitFor(before + 1)
  const failedJti = setReceiver.deliveries.at(-1)!.payload!.jti!
  await app.securityEvents.pusher.idle()
  const failed = await app.db.securityEvent.findUniqueOrThrow({ where: { id: failedJti } })
  t.equal(failed.deadAt, null)
  t.equal(failed.lastError, 'the receiver answered 503')
  t.ok(failed.nextAttemptAt!.getTime() > clock.now() + 3_000, 'due again after the backoff')

  setReceiver.answer = () => ({ status: 202 })
  before = setReceiver.deliveries.length
  clock.advance(10)
  await app.revocations.sync()
  await setReceiver.waitFor(before + 1)
  t.equal(setReceiver.deliveries.at(-1)!.payload!.jti, failedJti, 'the same SET (jti) again')
})

t.test('a redirect is a failed attempt, never followed', async (t) => {
  setReceiver.answer = () => ({ status: 307, headers: { location: `${setReceiver.url}?followed=1` } })
  const before = setReceiver.deliveries.length
  await logout()
  await setReceiver.waitFor(before + 1)
  const jti = setReceiver.deliveries.at(-1)!.payload!.jti!
  await app.securityEvents.pusher.idle()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(setReceiver.deliveries.filter((delivery) => delivery.url.includes('followed')), [], 'the Location was never requested')
  const row = await app.db.securityEvent.findUniqueOrThrow({ where: { id: jti } })
  t.equal(row.lastError, 'the receiver answered 307')
  setReceiver.answer = () => ({ status: 202 })
})

t.test('without WEBHOOK_ALLOW_PRIVATE_NETWORKS, a push endpoint on loopback or a private network is refused', async (t) => {
  const guardedReceiver = await adminReceiver(guarded.app)
  for (const url of [setReceiver.url, 'http://10.0.0.8/events', 'http://169.254.169.254/latest', 'http://localhost/events']) {
    const response = await guarded.app.inject({
      method: 'POST',
      url: '/ssf/stream',
      headers: guardedReceiver.headers,
      payload: { delivery: { method: PUSH, endpoint_url: url }, events_requested: [SESSION_REVOKED] },
    })
    t.equal(response.statusCode, 400, url)
    t.equal(json<{ code: string }>(response).code, 'invalid_stream_configuration')
  }
  const injected = await guarded.app.inject({
    method: 'POST',
    url: '/ssf/stream',
    headers: guardedReceiver.headers,
    payload: { delivery: { method: PUSH, endpoint_url: 'https://receiver.example/events', authorization_header: 'Bearer x\r\nX-Injected: 1' } },
  })
  t.equal(injected.statusCode, 400, 'no header injection through authorization_header')
})
