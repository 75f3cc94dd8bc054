import Fastify from 'fastify'
import t from 'tap'
import type { Socket } from 'node:net'
import resourceServerPlugin from '../../src/resource-server/index.js'
import { listeningTestApp } from '../helpers/app.js'
import { signupAdmin, createApiKey } from '../helpers/users.js'

t.test('probe', async (t) => {
  const auth = await listeningTestApp(() => ({ ACCESS_TOKEN_AUDIENCE: 'https://a.test' }))
  const sockets = new Map<Socket, string[]>()
  auth.app.server.on('connection', (socket: Socket) => {
    sockets.set(socket, [])
    socket.on('close', () => sockets.delete(socket))
  })
  auth.app.server.on('request', (req, res) => {
    const list = sockets.get(req.socket)
    const entry = `${req.method} ${req.url?.slice(0, 30)}`
    list?.push(entry + ' open')
    res.on('finish', () => list?.push(entry + ' finished'))
    res.on('close', () => list?.push(entry + ' closed'))
  })
  const admin = await signupAdmin(auth.app)
  const key = (await createApiKey(auth.app, admin.access_token, { name: 'rs', scopes: ['introspect', 'events'] })).key
  const app = Fastify({ logger: false })
  await app.register(resourceServerPlugin, { issuer: auth.issuer, audience: 'https://a.test', events: { credential: key } })
  await app.ready()
  await app.resourceServer.events!.whenHealthy()
  await new Promise((r) => setTimeout(r, 1000))
  await app.close()
  await new Promise((r) => setTimeout(r, 6000))
  for (const [, log] of sockets) t.comment(JSON.stringify(log))
  const started = performance.now()
  await auth.close()
  t.comment(`auth closed ${(performance.now() - started).toFixed(0)}`)
})
