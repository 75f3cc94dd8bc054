import t from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { enrolTotp, centreStep } from '../../helpers/totp.js'
import { bearer, injectAs, login, refresh, signup } from '../../helpers/users.js'
import { registerPasskey, SoftAuthenticator, TEST_ORIGIN } from '../../helpers/webauthn.js'
import { OutboxMailbox } from '../../security/context.js'
import { adminReceiver, createStream, CREDENTIAL_CHANGE, drain, revokedSessions, SESSION_REVOKED, type SetPayload } from './ssf.js'

/**
 * What becomes a security event, written by the triggers of migration
 * 20261207000100_security_event_streams in the transaction of the change:
 * a session-revoked event for every way a session ends (logout, an admin's
 * revocation, a disabled user, a password reset, refresh-token reuse), a
 * credential-change event for a password change, a TOTP and a passkey; none
 * for a change rolled back, none for a stream not subscribed, a paused
 * stream holding its events, a disabled one dropping them, and a new stream
 * starting with the revocations of the last access-token lifetime.
 */

const { app, clock } = await fileTestApp({ REFRESH_GRACE_SECONDS: '0' })
const receiver = await adminReceiver(app)
const stream = await createStream(app, receiver)
await drain(app, receiver, stream)
const mailbox = new OutboxMailbox(app)

const credentialChanges = (sets: SetPayload[]) => sets.filter((set) => CREDENTIAL_CHANGE in set.events).map((set) => ({ user: (set.sub_id.user as { id: string }).id, ...set.events[CREDENTIAL_CHANGE] }))

t.test('logout: the session, by its sid, with the user beside it', async (t) => {
  const user = await signup(app)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })).statusCode, 204)
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets), [user.sessionId])
  t.same(sets[0]!.sub_id, { format: 'complex', session: { format: 'opaque', id: user.sessionId }, user: { format: 'opaque', id: user.id } })
  t.match(sets[0]!.events[SESSION_REVOKED], { initiating_entity: 'user', reason_admin: { en: 'logout' } })
  t.type(sets[0]!.events[SESSION_REVOKED]!.event_timestamp, 'number')
})

t.test('logout ?scope=global: one event per session', async (t) => {
  const user = await signup(app)
  const second = await login(app, user.email)
  await app.inject({ method: 'POST', url: '/auth/logout?scope=global', headers: bearer(user.access_token) })
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets).sort(), [user.sessionId, second.sessionId].sort())
  t.equal(new Set(sets.map((set) => set.txn)).size, 1, 'one change, one txn')
})

t.test('an admin revoking a session, and a user\'s sessions', async (t) => {
  const user = await signup(app)
  const second = await login(app, user.email)
  const one = await injectAs(app, receiver.admin.access_token, 'DELETE', `/admin/sessions/${user.sessionId}`)
  t.equal(one.statusCode, 204, one.body)
  t.same(revokedSessions(await drain(app, receiver, stream)), [user.sessionId])
  const all = await injectAs(app, receiver.admin.access_token, 'DELETE', `/admin/users/${user.id}/sessions`)
  t.equal(all.statusCode, 204, all.body)
  t.same(revokedSessions(await drain(app, receiver, stream)), [second.sessionId])
})

t.test('a disabled user: every session, initiated by an admin', async (t) => {
  const user = await signup(app)
  const second = await login(app, user.email)
  const patch = await injectAs(app, receiver.admin.access_token, 'PATCH', `/admin/users/${user.id}`, { disabled: true })
  t.equal(patch.statusCode, 200, patch.body)
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets).sort(), [user.sessionId, second.sessionId].sort())
  for (const set of sets) t.match(set.events[SESSION_REVOKED], { initiating_entity: 'admin', reason_admin: { en: 'user_disabled' } })
})

t.test('a password reset: every session, and a credential change in the same transaction', async (t) => {
  const user = await signup(app)
  const second = await login(app, user.email)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email: user.email } })).statusCode, 202)
  const { token } = await mailbox.latest(user.email, 'reset')
  const confirmed = await app.inject({ method: 'POST', url: '/auth/password-reset/confirm', payload: { token, newPassword: 'a brand new passphrase' } })
  t.equal(confirmed.statusCode, 204, confirmed.body)
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets).sort(), [user.sessionId, second.sessionId].sort())
  t.match(credentialChanges(sets), [{ user: user.id, credential_type: 'password', change_type: 'update', initiating_entity: 'user', event_timestamp: Number }])
  t.equal(credentialChanges(sets).length, 1)
  t.equal(new Set(sets.map((set) => set.txn)).size, 1, 'session-revoked and credential-change share the txn of their one cause (SSF 1.0 section 4.1.9)')
})

t.test('refresh-token reuse: the session, by policy', async (t) => {
  const user = await signup(app)
  t.equal((await refresh(app, user.refresh_token)).statusCode, 200)
  const reuse = await refresh(app, user.refresh_token)
  t.equal(reuse.statusCode, 400)
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets), [user.sessionId])
  t.match(sets[0]!.events[SESSION_REVOKED], { initiating_entity: 'policy', reason_admin: { en: 'refresh_token_reused' } })
})

t.test('a password change: the other sessions, and a credential change', async (t) => {
  const user = await signup(app)
  const other = await login(app, user.email)
  const changed = await injectAs(app, user.access_token, 'POST', '/users/me/password', { currentPassword: 'a fine passphrase', newPassword: 'another fine passphrase' })
  t.equal(changed.statusCode, 204, changed.body)
  const sets = await drain(app, receiver, stream)
  t.same(revokedSessions(sets), [other.sessionId])
  t.match(credentialChanges(sets), [{ user: user.id, credential_type: 'password', change_type: 'update', initiating_entity: 'user' }])
})

t.test('TOTP and passkeys: created and deleted', async (t) => {
  const user = await signup(app)
  // The passkey first: once a TOTP is there, adding a way in needs a step-up with it.
  const passkey = await registerPasskey(app, user.access_token, new SoftAuthenticator(TEST_ORIGIN))
  const deleted = await injectAs(app, user.access_token, 'DELETE', `/users/me/passkeys/${passkey.id}`)
  t.equal(deleted.statusCode, 204, deleted.body)
  await centreStep({ app, clock })
  await enrolTotp(app, user.access_token, clock.now())
  const changes = credentialChanges(await drain(app, receiver, stream))
  t.match(changes, [
    { user: user.id, credential_type: 'fido2-roaming', change_type: 'create', initiating_entity: 'user' }, // device-bound (not backup eligible)
    { user: user.id, credential_type: 'fido2-platform', change_type: 'delete' },
    { user: user.id, credential_type: 'app', change_type: 'create', initiating_entity: 'user' },
  ])
})

t.test('a change rolled back writes no event', async (t) => {
  await drain(app, receiver, stream)
  const user = await signup(app)
  await t.rejects(app.db.$transaction(async (tx) => {
    await tx.session.update({ where: { id: user.sessionId }, data: { revokedAt: new Date(), revokedReason: 'logout' } })
    await tx.auditEvent.create({ data: { type: 'password_changed', userId: user.id, actorId: user.id } })
    t.equal(await tx.securityEvent.count({ where: { streamId: stream.stream_id, deliveredAt: null } }), 2, 'written in the transaction')
    throw new Error('rolled back')
  }), /rolled back/)
  t.equal(await app.db.securityEvent.count({ where: { streamId: stream.stream_id, deliveredAt: null } }), 0, 'gone with it')
  t.same(await drain(app, receiver, stream), [])
})

t.test('only the events a stream asked for; paused holds them, disabled drops them', async (t) => {
  const credentialsOnly = await createStream(app, receiver, { events_requested: [CREDENTIAL_CHANGE, 'urn:example:unknown'] })
  t.same(credentialsOnly.events_delivered, [CREDENTIAL_CHANGE], 'an unknown type is ignored')
  const paused = await createStream(app, receiver)
  const disabled = await createStream(app, receiver)
  await drain(app, receiver, paused)
  await drain(app, receiver, disabled)
  const status = (streamId: string, value: string) => app.inject({ method: 'POST', url: '/ssf/status', headers: receiver.headers, payload: { stream_id: streamId, status: value } })
  t.equal((await status(paused.stream_id, 'paused')).statusCode, 200)
  t.equal((await status(disabled.stream_id, 'disabled')).statusCode, 200)

  const user = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(user.access_token) })
  t.same(await drain(app, receiver, credentialsOnly), [], 'no session-revoked on a stream without it')
  t.same(await drain(app, receiver, paused), [], 'paused: nothing delivered')
  t.same(await drain(app, receiver, disabled), [], 'disabled: nothing delivered')
  t.same(revokedSessions(await drain(app, receiver, stream)), [user.sessionId])

  t.equal((await status(paused.stream_id, 'enabled')).statusCode, 200)
  t.same(revokedSessions(await drain(app, receiver, paused)), [user.sessionId], 'held while paused, delivered once enabled')
  t.equal(json<{ status: string }>(await app.inject({ method: 'GET', url: `/ssf/status?stream_id=${disabled.stream_id}`, headers: receiver.headers })).status, 'disabled')
  t.equal(await app.db.securityEvent.count({ where: { streamId: disabled.stream_id, deliveredAt: null } }), 0, 'a disabled stream holds nothing')
})

t.test('a new stream starts with the sessions revoked within the access-token lifetime, not older ones', async (t) => {
  const old = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(old.access_token) })
  // Older than the longest access-token lifetime (600 s) and its margin.
  await app.db.session.update({ where: { id: old.sessionId }, data: { revokedAt: new Date(clock.now() - 700_000) } })
  const recent = await signup(app)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(recent.access_token) })
  await drain(app, receiver, stream)
  const fresh = await createStream(app, receiver)
  const backlog = revokedSessions(await drain(app, receiver, fresh))
  t.ok(backlog.includes(recent.sessionId), 'a session revoked a moment ago')
  t.notOk(backlog.includes(old.sessionId), 'not one whose tokens have all expired')
})
