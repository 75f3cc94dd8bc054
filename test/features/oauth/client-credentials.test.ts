import { decodeJwt } from 'jose'
import t from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { createApiKey, injectAs, signupAdmin } from '../../helpers/users.js'

/**
 * client_credentials (RFC 6749 §4.4, DESIGN §3.14): a confidential client
 * registered for it gets a token for itself (sub = the client, no session,
 * no refresh token), audited; the service's user routes refuse that token;
 * introspection describes it while the client exists.
 */

const { app } = await fileTestApp()
const admin = await signupAdmin(app)
const introspectionKey = (await createApiKey(app, admin.access_token, { name: 'introspection', scopes: ['introspect'] })).key

async function register (body: Record<string, unknown>) {
  return injectAs(app, admin.access_token, 'POST', '/admin/clients', { client_name: 'Billing service', redirect_uris: [], ...body })
}

function tokenRequest (fields: Record<string, string>, basic?: { id: string; secret: string }) {
  return app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(basic ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}` } : {}),
    },
    payload: new URLSearchParams(fields).toString(),
  })
}

const created = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'profile' })
const service = json<{ client_id: string; client_secret: string }>(created)

t.test('a confidential client gets a token for itself, and it is audited', async (t) => {
  t.equal(created.statusCode, 201)
  const response = await tokenRequest({ grant_type: 'client_credentials' }, { id: service.client_id, secret: service.client_secret })
  t.equal(response.statusCode, 200)
  const body = json<Record<string, unknown>>(response)
  t.equal(body.token_type, 'Bearer')
  t.notOk('refresh_token' in body, 'no refresh token (RFC 6749 §4.4.3)')
  t.notOk('id_token' in body, 'no ID token')
  const claims = decodeJwt(body.access_token as string)
  t.equal(claims.sub, service.client_id, 'sub is the client')
  t.equal(claims.client_id, service.client_id)
  t.notOk('sid' in claims, 'no session')
  t.equal(claims.scope, 'profile', 'the client\'s registered scope')
  const audit = json<{ items: { type: string; details: Record<string, unknown> }[] }>(await injectAs(app, admin.access_token, 'GET', '/admin/audit-events?type=client_token_issued'))
  t.ok(audit.items.some((event) => event.details.clientId === service.client_id), 'client_token_issued names the client')

  const me = await injectAs(app, body.access_token as string, 'GET', '/users/me')
  t.equal(me.statusCode, 401, "the service's user routes refuse a client's own token")

  const introspected = await app.inject({ method: 'POST', url: '/auth/introspect', headers: { 'x-api-key': introspectionKey }, payload: { token: body.access_token } })
  const answer = json<Record<string, unknown>>(introspected)
  t.equal(answer.active, true, 'introspection describes it')
  t.equal(answer.sub, service.client_id)
  t.notOk('sid' in answer)
})

t.test('a scope beyond the client\'s is refused; post authentication is refused for a basic client', async (t) => {
  const wide = await tokenRequest({ grant_type: 'client_credentials', scope: 'profile payments' }, { id: service.client_id, secret: service.client_secret })
  t.equal(wide.statusCode, 400)
  t.equal(json(wide).error, 'invalid_scope')
  const post = await tokenRequest({ grant_type: 'client_credentials', client_id: service.client_id, client_secret: service.client_secret })
  t.equal(post.statusCode, 401, 'registered for client_secret_basic: the secret in the body is another method')
  t.equal(json(post).error, 'invalid_client')
})

t.test('a wrong secret, no secret, a public client, and a client not registered for the grant are refused', async (t) => {
  const wrong = await tokenRequest({ grant_type: 'client_credentials' }, { id: service.client_id, secret: `${service.client_secret}x` })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.headers['www-authenticate'], /^Basic/)
  const none = await tokenRequest({ grant_type: 'client_credentials', client_id: service.client_id })
  t.equal(none.statusCode, 401, 'a confidential client without its secret')

  const publicRegistration = await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' })
  t.equal(publicRegistration.statusCode, 400, 'registration refuses client_credentials to a public client')
  t.equal(json(publicRegistration).code, 'invalid_client_metadata')
  const mobile = await tokenRequest({ grant_type: 'client_credentials', client_id: 'mobile' })
  t.equal(mobile.statusCode, 400)
  t.equal(json(mobile).error, 'unauthorized_client', 'a public first-party client may not use it')

  const codeOnly = json<{ client_id: string; client_secret: string }>(await register({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_post' }))
  const refused = await tokenRequest({ grant_type: 'client_credentials', client_id: codeOnly.client_id, client_secret: codeOnly.client_secret })
  t.equal(refused.statusCode, 400)
  t.equal(json(refused).error, 'unauthorized_client', 'not registered for client_credentials')
})

t.test('a rotated secret replaces the old one at once; a deleted client\'s tokens are inactive', async (t) => {
  const other = json<{ client_id: string; client_secret: string }>(await register({ grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_post' }))
  const issued = json<{ access_token: string }>(await tokenRequest({ grant_type: 'client_credentials', client_id: other.client_id, client_secret: other.client_secret }))
  const rotated = json<{ client_secret: string }>(await injectAs(app, admin.access_token, 'POST', `/admin/clients/${other.client_id}/secret`))
  t.not(rotated.client_secret, other.client_secret)
  t.equal((await tokenRequest({ grant_type: 'client_credentials', client_id: other.client_id, client_secret: other.client_secret })).statusCode, 401, 'the old secret')
  t.equal((await tokenRequest({ grant_type: 'client_credentials', client_id: other.client_id, client_secret: rotated.client_secret })).statusCode, 200, 'the new secret')

  t.equal((await injectAs(app, admin.access_token, 'DELETE', `/admin/clients/${other.client_id}`)).statusCode, 204)
  // The registry's cache holds a client up to 5 s on other instances; this instance forgets it at once.
  const answer = json<Record<string, unknown>>(await app.inject({ method: 'POST', url: '/auth/introspect', headers: { 'x-api-key': introspectionKey }, payload: { token: issued.access_token } }))
  t.same(answer, { active: false }, 'the deleted client\'s token is inactive')
})
