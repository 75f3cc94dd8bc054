import t from 'tap'
import { buildTestApp, fileTestApp, json } from '../../helpers/app.js'
import { injectAs, signup, signupAdmin } from '../../helpers/users.js'

/** The admin API of webhooks (DESIGN §3.18): registration with its SSRF refusal, the secret shown once, changes, deletion, replay. */

const { app, database } = await fileTestApp({ WEBHOOK_POLL_INTERVAL_MS: '600000' })
const admin = await signupAdmin(app)
const as = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: Record<string, unknown>) => injectAs(app, admin.access_token, method, url, body)

t.test('registration: 201 with the secret once (sealed at rest), then never again', async (t) => {
  const created = await as('POST', '/admin/webhooks', { url: 'https://93.184.215.14/hooks', events: ['user_signed_up', 'login_succeeded'], description: 'CRM' })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['cache-control'], 'no-store')
  const body = json<{ id: string; secret: string; url: string; events: string[]; enabled: boolean; createdBy: string }>(created)
  t.match(body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret of 32 bytes')
  t.same(body.events, ['user_signed_up', 'login_succeeded'])
  t.equal(body.enabled, true)
  t.equal(body.createdBy, admin.id, 'its owner: the admin who registered it')
  const read = json<Record<string, unknown>>(await as('GET', `/admin/webhooks/${body.id}`))
  t.notOk('secret' in read, 'not in a read')
  const list = json<{ items: Record<string, unknown>[] }>(await as('GET', '/admin/webhooks'))
  t.ok(list.items.every((item) => !('secret' in item)), 'nor in the list')
  const row = await app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: body.id } })
  t.notOk(Buffer.from(row.secretEncrypted).toString('latin1').includes(body.secret.slice(6)), 'sealed in the row')
  const audit = json<{ items: { details: { webhookId: string } }[] }>(await as('GET', '/admin/audit-events?type=webhook_created'))
  t.equal(audit.items[0]!.details.webhookId, body.id, 'audited')
})

t.test('a URL reaching loopback, private, link-local or metadata addresses is refused, at registration and on change', async (t) => {
  for (const url of ['http://127.0.0.1:8080/', 'http://localhost/hook', 'http://10.0.0.8/', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://2130706433/', 'http://0177.0.0.1/', 'ftp://93.184.215.14/', 'https://user:pass@93.184.215.14/']) {
    const answer = await as('POST', '/admin/webhooks', { url, events: ['*'] })
    t.equal(answer.statusCode, 400, url)
    t.equal(json(answer).code, 'webhook_url_refused')
  }
  const created = json<{ id: string }>(await as('POST', '/admin/webhooks', { url: 'https://93.184.215.14/x', events: ['*'] }))
  const moved = await as('PATCH', `/admin/webhooks/${created.id}`, { url: 'http://192.168.1.1/' })
  t.equal(moved.statusCode, 400)
  t.equal(json(moved).code, 'webhook_url_refused')
  t.equal((await app.db.webhookEndpoint.findUniqueOrThrow({ where: { id: created.id } })).url, 'https://93.184.215.14/x', 'unchanged')
  const open = await buildTestApp({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_POLL_INTERVAL_MS: '600000' }, { database })
  t.teardown(() => open.close())
  const openAdmin = await signupAdmin(open.app)
  const allowed = await injectAs(open.app, openAdmin.access_token, 'POST', '/admin/webhooks', { url: 'http://127.0.0.1:8080/', events: ['*'] })
  t.equal(allowed.statusCode, 201, 'accepted with WEBHOOK_ALLOW_PRIVATE_NETWORKS=true')
})

t.test('bad input: 400, nothing stored', async (t) => {
  const before = await app.db.webhookEndpoint.count()
  const cases: Record<string, unknown>[] = [
    { url: 'https://93.184.215.14/', events: [] },
    { url: 'https://93.184.215.14/', events: ['no_such_event'] },
    { url: 'https://93.184.215.14/', events: ['*', '*'] },
    { url: 'https://93.184.215.14/' },
    { url: 'not a url', events: ['*'] },
    { url: 'https://93.184.215.14/', events: ['*'], extra: 1 },
  ]
  for (const body of cases) t.equal((await as('POST', '/admin/webhooks', body)).statusCode, 400, JSON.stringify(body))
  t.equal(await app.db.webhookEndpoint.count(), before)
  t.equal((await as('PATCH', '/admin/webhooks/00000000-0000-4000-8000-000000000000', {})).statusCode, 400, 'an empty change')
})

t.test('unknown ids: 404; non-admins: 403', async (t) => {
  const unknown = '00000000-0000-4000-8000-000000000000'
  t.equal(json((await as('GET', `/admin/webhooks/${unknown}`))).code, 'webhook_not_found')
  t.equal((await as('PATCH', `/admin/webhooks/${unknown}`, { enabled: false })).statusCode, 404)
  t.equal((await as('DELETE', `/admin/webhooks/${unknown}`)).statusCode, 404)
  t.equal((await as('POST', `/admin/webhooks/${unknown}/secret`)).statusCode, 404)
  t.equal((await as('GET', `/admin/webhooks/${unknown}/deliveries`)).statusCode, 404)
  t.equal((await as('GET', '/admin/webhooks/not-a-uuid')).statusCode, 400)
  const user = await signup(app)
  t.equal((await injectAs(app, user.access_token, 'GET', '/admin/webhooks')).statusCode, 403)
  t.equal((await app.inject({ method: 'GET', url: '/admin/webhooks' })).statusCode, 401)
})

t.test('replay queues every event of the subscribed types in the range again, with the same webhook-ids', async (t) => {
  const created = json<{ id: string }>(await as('POST', '/admin/webhooks', { url: 'https://93.184.215.14/replay', events: ['user_signed_up'] }))
  const pause = () => new Promise((resolve) => setTimeout(resolve, 20))
  await pause()
  const since = new Date().toISOString()
  await signup(app)
  await signup(app)
  await pause()
  const until = new Date().toISOString()
  const first = await app.db.webhookDelivery.findMany({ where: { endpointId: created.id } })
  t.equal(first.length, 2, 'the two sign-ups, by the trigger')
  const replayed = await as('POST', `/admin/webhooks/${created.id}/replay`, { since, until })
  t.equal(replayed.statusCode, 202)
  t.equal(json<{ queued: number }>(replayed).queued, 2)
  const all = await app.db.webhookDelivery.findMany({ where: { endpointId: created.id } })
  t.equal(all.length, 4)
  t.same(new Set(all.map((d) => d.eventId)), new Set(first.map((d) => d.eventId)), 'the same events')
  const listed = json<{ items: { webhookId: string; eventType: string; status: string }[] }>(await as('GET', `/admin/webhooks/${created.id}/deliveries?status=pending&limit=3`))
  t.equal(listed.items.length, 3)
  t.ok(listed.items.every((d) => d.eventType === 'user_signed_up' && /^evt_\d+$/.test(d.webhookId)))
  t.equal((await as('POST', `/admin/webhooks/${created.id}/replay`, { since: until, until: since })).statusCode, 400, 'an empty range')
})

t.test('deletion removes the endpoint and its deliveries', async (t) => {
  const created = json<{ id: string }>(await as('POST', '/admin/webhooks', { url: 'https://93.184.215.14/gone', events: ['*'] }))
  await signup(app)
  t.ok((await app.db.webhookDelivery.count({ where: { endpointId: created.id } })) > 0)
  t.equal((await as('DELETE', `/admin/webhooks/${created.id}`)).statusCode, 204)
  t.equal(await app.db.webhookDelivery.count({ where: { endpointId: created.id } }), 0)
  t.equal((await as('GET', `/admin/webhooks/${created.id}`)).statusCode, 404)
})
