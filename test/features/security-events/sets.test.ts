import { decodeProtectedHeader, type JWK } from 'jose'
import t from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { bearer, signup } from '../../helpers/users.js'
import { adminReceiver, createStream, drain, poll, POLL, PUSH, SESSION_REVOKED, CREDENTIAL_CHANGE, VERIFICATION, verifySet } from './ssf.js'

/**
 * The Security Event Tokens themselves (RFC 8417 as SSF 1.0 §4.1 profiles
 * it): signed by the service's current key, ES256, typ secevent+jwt, kid of
 * the JWKS; iss, iat, jti (the row's id), aud (the stream's), sub_id, one
 * event, txn; no sub, no exp. Verified with jose against the published
 * JWKS, as a receiver does. A SET is no access token. The transmitter
 * metadata (SSF 1.0 §7) and the verification event (§8.1.4).
 */

const { app } = await fileTestApp()
const receiver = await adminReceiver(app)
const stream = await createStream(app, receiver)
await drain(app, receiver, stream)

t.test('/.well-known/ssf-configuration describes the transmitter', async (t) => {
  const response = await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  t.match(response.headers['cache-control'], /^public, max-age=\d+$/)
  const issuer = app.config.issuer
  t.same(json(response), {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    delivery_methods_supported: [PUSH, POLL],
    configuration_endpoint: `${issuer}/ssf/stream`,
    status_endpoint: `${issuer}/ssf/status`,
    verification_endpoint: `${issuer}/ssf/verify`,
    critical_subject_members: ['session'],
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }, { spec_urn: 'urn:token-auth:api-key' }],
    default_subjects: 'ALL',
    events_supported: [SESSION_REVOKED, CREDENTIAL_CHANGE],
  })
})

t.test('a session-revoked SET: header, claims, signature', async (t) => {
  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const answer = await poll(app, receiver, stream.stream_id)
  const [[jti, set]] = Object.entries(answer.sets) as [[string, string]]
  const header = decodeProtectedHeader(set)
  const jwks = json<{ keys: JWK[] }>(await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
  t.same(Object.keys(header).sort(), ['alg', 'kid', 'typ'])
  t.equal(header.alg, 'ES256')
  t.equal(header.typ, 'secevent+jwt')
  t.ok(jwks.keys.some((key) => key.kid === header.kid), 'signed by a key of the JWKS')
  t.equal(header.kid, app.keys.currentKey()!.kid, 'the current signing key')

  const { payload } = await verifySet(app, set, stream.aud)
  t.same(Object.keys(payload).sort(), ['aud', 'events', 'iat', 'iss', 'jti', 'sub_id', 'txn'])
  t.equal(payload.jti, jti, 'keyed by its jti')
  t.equal(payload.iss, app.config.issuer)
  t.equal(payload.aud, stream.aud)
  t.equal(payload.aud, `urn:token-auth:ssf:stream:${stream.stream_id}`, 'an admin\'s stream is its own audience')
  t.ok(Math.abs(payload.iat! - app.now() / 1000) < 60)
  t.type(payload.txn, 'string')
  t.notOk('sub' in payload, 'no sub (SSF 1.0 section 4.1.2)')
  t.notOk('exp' in payload, 'no exp (SSF 1.0 section 4.1.7)')
  t.same(payload.sub_id, { format: 'complex', session: { format: 'opaque', id: user.sessionId }, user: { format: 'opaque', id: user.id } })
  t.same(Object.keys(payload.events), [SESSION_REVOKED], 'one event')
  t.match(payload.events[SESSION_REVOKED], { initiating_entity: 'user', reason_admin: { en: 'logout' }, event_timestamp: Number })

  await t.rejects(verifySet(app, set, 'https://someone-else.example'), /aud/, 'another audience refuses it')
  await poll(app, receiver, stream.stream_id, { ack: [jti], maxEvents: 0 })
})

t.test('a SET is no access token: the service refuses one as a Bearer credential', async (t) => {
  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  const answer = await poll(app, receiver, stream.stream_id)
  const set = Object.values(answer.sets)[0]!
  const asToken = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(set) })
  t.equal(asToken.statusCode, 401)
  const introspected = await app.inject({ method: 'POST', url: '/auth/introspect', headers: receiver.headers, payload: { token: set } })
  t.not(introspected.statusCode, 200, 'nor as a credential elsewhere')
  await poll(app, receiver, stream.stream_id, { ack: Object.keys(answer.sets), maxEvents: 0 })
})

t.test('verification (SSF 1.0 section 8.1.4): the stream as subject, the state echoed, at most one per interval', async (t) => {
  const verify = (state?: string) =>
    app.inject({ method: 'POST', url: '/ssf/verify', headers: receiver.headers, payload: { stream_id: stream.stream_id, ...(state === undefined ? {} : { state }) } })
  const first = await verify('VGhpcyBpcyBhIHN0YXRl')
  t.equal(first.statusCode, 204)
  const again = await verify('again')
  t.equal(again.statusCode, 429)
  t.equal(json<{ code: string }>(again).code, 'verification_too_frequent')
  t.equal(again.headers['retry-after'], '5')
  const [set] = await drain(app, receiver, stream)
  t.same(set!.sub_id, { format: 'opaque', id: stream.stream_id })
  t.same(set!.events, { [VERIFICATION]: { state: 'VGhpcyBpcyBhIHN0YXRl' } })
})
