import t from 'tap'
import { buildTestApp, json } from './helpers/app.js'

t.test('health and signup', async (t) => {
  const { app, close } = await buildTestApp()
  t.teardown(close)
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  const signup = await app.inject({ method: 'POST', url: '/auth/signup', payload: { email: 'x@y.test', password: 'a fine passphrase' } })
  t.equal(signup.statusCode, 201, signup.body)
  t.ok(json(signup).access_token)
})
