import t from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { injectAs, login, signup, signupAdmin } from '../../helpers/users.js'

/** The admin API of clients (DESIGN §3.14): RFC 7591 metadata, the seeded first-party clients, secrets shown once, deletion. */

const { app } = await fileTestApp()
const admin = await signupAdmin(app)
const as = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: Record<string, unknown>) => injectAs(app, admin.access_token, method, url, body)

t.test('web, admin and mobile are seeded as configured first-party public clients; they cannot be deleted or made confidential', async (t) => {
  const list = json<{ items: { client_id: string; first_party: boolean; configured: boolean; token_endpoint_auth_method: string }[] }>(await as('GET', '/admin/clients'))
  for (const id of ['web', 'admin', 'mobile']) {
    const client = list.items.find((item) => item.client_id === id)
    t.ok(client?.configured && client.first_party && client.token_endpoint_auth_method === 'none', `${id} seeded`)
  }
  t.equal((await as('DELETE', '/admin/clients/web')).statusCode, 409)
  const confidential = await as('PATCH', '/admin/clients/mobile', { token_endpoint_auth_method: 'client_secret_basic' })
  t.equal(confidential.statusCode, 409)
  const redirect = await as('PATCH', '/admin/clients/mobile', { redirect_uris: ['http://127.0.0.1/callback'] })
  t.equal(redirect.statusCode, 200, 'an admin may give a configured client redirect URIs')
  t.same(json<{ redirect_uris: string[] }>(redirect).redirect_uris, ['http://127.0.0.1/callback'])
})

t.test('a confidential client\'s secret is shown on creation and rotation only, and stored as a keyed hash', async (t) => {
  const created = await as('POST', '/admin/clients', { client_name: 'Reports', redirect_uris: ['https://reports.example/cb'] })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['cache-control'], 'no-store')
  const body = json<{ client_id: string; client_secret: string; token_endpoint_auth_method: string }>(created)
  t.equal(body.token_endpoint_auth_method, 'client_secret_basic', 'the RFC 7591 default')
  t.match(body.client_secret, /^tacs_[A-Za-z0-9_-]{43}$/)
  const read = json<Record<string, unknown>>(await as('GET', `/admin/clients/${body.client_id}`))
  t.notOk('client_secret' in read, 'never shown again')
  const row = await app.db.oauthClient.findUnique({ where: { id: body.client_id } })
  t.not(Buffer.from(row!.secretHash!).toString('utf8'), body.client_secret)
  t.equal(row!.secretHash!.length, 32, 'an HMAC-SHA-256')
  const rotated = json<{ client_secret: string }>(await as('POST', `/admin/clients/${body.client_id}/secret`))
  t.not(rotated.client_secret, body.client_secret)
  const publicClient = json<{ client_id: string }>(await as('POST', '/admin/clients', { client_name: 'SPA', redirect_uris: ['https://spa.example/cb'], token_endpoint_auth_method: 'none' }))
  t.equal((await as('POST', `/admin/clients/${publicClient.client_id}/secret`)).statusCode, 400, 'a public client has no secret')
  const audit = json<{ items: { type: string }[] }>(await as('GET', '/admin/audit-events?type=client_secret_rotated'))
  t.ok(audit.items.length > 0, 'the rotation is audited')
})

t.test('RFC 7591 registration errors', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ client_name: 'x', redirect_uris: ['http://app.example/cb'] }, 'invalid_redirect_uri'],
    [{ client_name: 'x', redirect_uris: ['https://app.example/cb#f'] }, 'invalid_redirect_uri'],
    [{ client_name: 'x', redirect_uris: [] }, 'invalid_redirect_uri'],
    [{ client_name: 'x', redirect_uris: ['https://a.example/cb'], grant_types: ['password'] }, 'invalid_client_metadata'],
    [{ client_name: 'x', redirect_uris: ['https://a.example/cb'], grant_types: ['implicit'] }, 'invalid_client_metadata'],
    [{ client_name: 'x', redirect_uris: ['https://a.example/cb'], scope: 'everything' }, 'invalid_client_metadata'],
    [{ client_name: 'x', redirect_uris: ['https://a.example/cb'], logo_uri: 'javascript:alert(1)' }, 'invalid_client_metadata'],
    [{ client_name: 'x', redirect_uris: ['https://a.example/cb'], post_logout_redirect_uris: ['http://evil.example/'] }, 'invalid_redirect_uri'],
  ]
  for (const [body, code] of cases) {
    const answer = await as('POST', '/admin/clients', body)
    t.equal(answer.statusCode, 400, JSON.stringify(body))
    t.equal(json(answer).code, code)
  }
  const user = await signup(app)
  t.equal((await injectAs(app, user.access_token, 'POST', '/admin/clients', { client_name: 'x', redirect_uris: ['https://a.example/cb'] })).statusCode, 403, 'admins only')
})

t.test('deleting a client ends its sessions and its users\' consents', async (t) => {
  const created = json<{ client_id: string }>(await as('POST', '/admin/clients', { client_name: 'Gone', redirect_uris: ['https://gone.example/cb'], token_endpoint_auth_method: 'none' }))
  const user = await signup(app)
  await app.db.oauthGrant.create({ data: { userId: user.id, clientId: created.client_id, scope: 'openid' } })
  const session = await login(app, user.email)
  await app.db.session.update({ where: { id: session.sessionId }, data: { clientId: created.client_id } })
  t.equal((await as('DELETE', `/admin/clients/${created.client_id}`)).statusCode, 204)
  t.equal(await app.db.oauthGrant.count({ where: { clientId: created.client_id } }), 0, 'consents gone')
  const ended = await app.db.session.findUnique({ where: { id: session.sessionId } })
  t.ok(ended?.revokedAt, 'the session is revoked')
  t.equal((await as('GET', `/admin/clients/${created.client_id}`)).statusCode, 404)
})
