import t from 'tap'
import { errorFromResponse } from '../../src/client/errors.js'
import { ERROR_CODES, ERROR_STATUS } from '../../src/errors.js'
import { buildTestApp, json } from '../helpers/app.js'

/**
 * The error catalogue (src/errors.ts): every code the API answers with has
 * one status; Fastify's own client errors come out as codes of the
 * catalogue (never fst_err_*); the OpenAPI document lists the codes; the
 * SDK reads them.
 */

const { app, close } = await buildTestApp()
t.teardown(close)

const post = (url: string, payload: string, contentType: string) => app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } })

t.test('Fastify\'s body errors answer stable codes of the catalogue, in each route\'s shape', async (t) => {
  const broken = await post('/auth/signup', '{"email":', 'application/json')
  t.equal(broken.statusCode, 400)
  t.equal(json(broken).code, 'invalid_json')
  const brokenOAuth = await post('/auth/token', '{"grant_type":', 'application/json')
  t.equal(brokenOAuth.statusCode, 400)
  t.equal(json(brokenOAuth).error, 'invalid_request', 'an OAuth endpoint answers the RFC 6749 code')
  t.match(json(brokenOAuth).error_description, /not valid JSON/)

  const text = await post('/auth/signup', 'hello', 'text/plain')
  t.equal(text.statusCode, 415)
  t.equal(json(text).code, 'unsupported_media_type')
  t.equal(json(text).message, 'send the body as application/json', 'it names what the route accepts')
  const textOAuth = await post('/auth/token', 'hello', 'text/plain')
  t.equal(textOAuth.statusCode, 415)
  t.equal(json(textOAuth).error_description, 'send the body as application/json or application/x-www-form-urlencoded')

  const huge = await post('/auth/signup', JSON.stringify({ email: 'x@y.test', password: 'x'.repeat(100 * 1024) }), 'application/json')
  t.equal(huge.statusCode, 413)
  t.equal(json(huge).code, 'body_too_large')

  for (const response of [broken, brokenOAuth, text, textOAuth, huge]) t.notMatch(response.body, /fst_err/i, 'no Fastify internals')
})

t.test('every error answer carries a code of the catalogue with its status', async (t) => {
  const answers = [
    await app.inject({ method: 'GET', url: '/nowhere' }),
    await app.inject({ method: 'GET', url: '/users/me' }),
    await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: 'Bearer nope' } }),
    await app.inject({ method: 'GET', url: '/admin/users/not-a-uuid', headers: { authorization: 'Bearer nope' } }),
    await app.inject({ method: 'POST', url: '/auth/signup', payload: { email: 'not an address', password: 'correct horse battery' } }),
  ]
  for (const answer of answers) {
    const { code, statusCode } = json<{ code: string; statusCode: number }>(answer)
    t.ok(ERROR_CODES.includes(code as never), `${code} is in the catalogue`)
    t.equal(statusCode, ERROR_STATUS[code as keyof typeof ERROR_STATUS], `${code}: ${statusCode}`)
    t.equal(answer.statusCode, statusCode)
  }
})

t.test('the OpenAPI document lists the codes as an enum', async (t) => {
  const document = json<{ components: { schemas: Record<string, { properties: { code: { enum: string[] } } }> } }>(await app.inject({ method: 'GET', url: '/docs/json' }))
  const schema = Object.values(document.components.schemas).find((s) => s.properties?.code?.enum)
  t.same(schema?.properties.code.enum, ERROR_CODES)
})

t.test('the SDK reads a code of the catalogue as it is, and one it does not know as http_<status>', async (t) => {
  const answer = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
  t.equal((await errorFromResponse(answer(404, { code: 'user_not_found', message: 'x' }), 'api')).code, 'user_not_found')
  t.equal((await errorFromResponse(answer(400, { error: 'server_error', error_description: 'x' }), 'api')).code, 'server_error', 'an OAuth alias')
  t.equal((await errorFromResponse(answer(418, { code: 'teapot', message: 'x' }), 'api')).code, 'http_418')
})
