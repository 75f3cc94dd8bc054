import type { AddressInfo } from 'node:net'
import t from 'tap'
import { AuthClient, InvalidCredentialsError, MemoryStore, StepUpRequiredError, type SessionEndReason } from '../../src/client/index.js'
import { buildTestApp } from '../helpers/app.js'
import { markAddressVerified, PASSWORD, signup } from '../helpers/users.js'

/**
 * The SDK and RFC 9470: a 401 insufficient_user_authentication is not an
 * expired session (no refresh, no sign-out) but a StepUpRequiredError
 * naming what the service asked for; `stepUp` raises the session and the
 * retried request goes through.
 */

const MAX_AGE = 600
const service = await buildTestApp({ RECENT_AUTH_MAX_AGE_SECONDS: String(MAX_AGE) })
t.teardown(service.close)
await service.app.listen({ host: '127.0.0.1', port: 0 })
const baseUrl = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`

t.test('a stale authentication: StepUpRequiredError, the session kept; stepUp with the password, then the request passes', async (t) => {
  const account = await signup(service.app)
  const grants: string[] = []
  const countingFetch: typeof fetch = async (input, init) => {
    if (String(input).endsWith('/auth/token') && typeof init?.body === 'string') grants.push((JSON.parse(init.body) as { grant_type: string }).grant_type)
    return fetch(input, init)
  }
  const client = new AuthClient({ baseUrl, clientId: 'mobile', transport: 'body', store: new MemoryStore(), fetch: countingFetch, crossTab: false })
  t.teardown(() => client.close())
  const ended: SessionEndReason[] = []
  client.onSessionEnd((reason) => ended.push(reason))
  await client.login(account.email, PASSWORD)
  t.same(client.claims?.amr, ['pwd'])
  const loginSession = client.claims?.sid

  service.clock.advance(MAX_AGE + 30)
  await service.app.revocations.sync()
  const change = () => client.request('/users/me/password', { method: 'POST', json: { currentPassword: PASSWORD, newPassword: 'another fine passphrase' } })
  const error = await change().catch((caught: unknown) => caught)
  t.type(error, StepUpRequiredError)
  t.equal((error as StepUpRequiredError).maxAge, MAX_AGE, 'max_age from the challenge')
  t.same((error as StepUpRequiredError).acrValues, [])
  t.same(grants, ['authorization_code'], 'the sign-in\'s code exchange, and no refresh: it would not raise the authentication')
  t.ok(client.isSignedIn, 'still signed in')
  t.same(ended, [])

  await t.rejects(client.stepUp({ password: 'not it' }), InvalidCredentialsError, 'a wrong password')
  const claims = await client.stepUp({ password: PASSWORD })
  t.ok(Math.abs(Number(claims?.auth_time) - service.clock.now() / 1000) <= 2, 'auth_time: now')
  t.equal(claims?.sid, loginSession, 'the same session')
  t.equal(await change(), undefined, 'the retried change: 204')
  t.same(ended, [])
})

t.test('onStepUpRequired: the app prompts, steps up, and the request is retried once', async (t) => {
  const account = await signup(service.app)
  await markAddressVerified(service.app, account.access_token)
  const prompts: StepUpRequiredError[] = []
  let answer = PASSWORD
  const client: AuthClient = new AuthClient({
    baseUrl,
    clientId: 'mobile',
    transport: 'body',
    store: new MemoryStore(),
    crossTab: false,
    onStepUpRequired: async (required) => {
      prompts.push(required)
      try {
        await client.stepUp({ password: answer })
        return true
      } catch {
        return false
      }
    },
  })
  t.teardown(() => client.close())
  await client.login(account.email, PASSWORD)
  service.clock.advance(MAX_AGE + 30)
  await service.app.revocations.sync()
  const createKey = () => client.request<{ key: string }>('/api-keys', { method: 'POST', json: { name: 'ci', scopes: ['profile'] } })

  answer = 'a wrong password'
  await t.rejects(createKey(), StepUpRequiredError, 'the prompt failed: the original error')
  t.equal(prompts.length, 1)
  answer = PASSWORD
  const created = await createKey()
  t.match(created.key, /^tak_/, 'stepped up and retried: the key is created')
  t.equal(prompts.length, 2, 'one prompt per refused request')
})
