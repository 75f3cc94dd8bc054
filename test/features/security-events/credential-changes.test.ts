import t from 'tap'
import { CREDENTIAL_CHANGE_AUDIT_TYPES, CREDENTIAL_CHANGES, credentialChangeEvent } from '../../../src/features/security-events/credential-changes.js'
import { AUDIT_EVENT_TYPES } from '../../../src/shared/audit.js'
import { fileTestApp } from '../../helpers/app.js'
import { signup } from '../../helpers/users.js'
import { adminReceiver, createStream, CREDENTIAL_CHANGE, drain } from './ssf.js'

/**
 * One truth for what a credential change is: the trigger of migration
 * 20261207000100_security_event_streams lists audit types (SQL cannot import
 * TypeScript), credential-changes.ts maps them to CAEP's credential_type
 * and change_type. Every audit type of the catalogue is written once, in a
 * transaction rolled back, and exactly the mapped ones must make an event;
 * the trigger's definition must name exactly those.
 */

const { app } = await fileTestApp()
const receiver = await adminReceiver(app)
const stream = await createStream(app, receiver, { events_requested: [CREDENTIAL_CHANGE] })
await drain(app, receiver, stream)
const user = await signup(app)

/** CAEP 1.0 §3.3's credential types, and this service's own (credential-changes.ts). */
const CREDENTIAL_TYPES = ['password', 'pin', 'x509', 'fido2-platform', 'fido2-roaming', 'fido-u2f', 'verifiable-credential', 'phone-voice', 'phone-sms', 'app', 'api-key']
const CHANGE_TYPES = ['create', 'revoke', 'update', 'delete']

class RolledBack extends Error {}

t.test('the trigger writes an event for exactly the audit types the mapping knows', async (t) => {
  const writing: string[] = []
  for (const type of AUDIT_EVENT_TYPES) {
    await app.db.$transaction(async (tx) => {
      await tx.auditEvent.create({ data: { type, userId: user.id, actorId: user.id } })
      if ((await tx.securityEvent.count({ where: { streamId: stream.stream_id } })) > 0) writing.push(type)
      throw new RolledBack()
    }).catch((error: unknown) => {
      if (!(error instanceof RolledBack)) throw error
    })
  }
  t.same(writing.sort(), [...CREDENTIAL_CHANGE_AUDIT_TYPES].sort())
  for (const type of CREDENTIAL_CHANGE_AUDIT_TYPES) t.ok((AUDIT_EVENT_TYPES as string[]).includes(type), `${type} is an audit type of the catalogue`)
})

t.test('the trigger\'s definition names the same list', async (t) => {
  const rows = await app.db.$queryRaw<{ definition: string }[]>`
    SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgname = 'audit_events_security_events'`
  const listed = [...(rows[0]?.definition ?? '').matchAll(/'([a-z_]+)'::text/g)].map((match) => match[1]!)
  t.same(listed.sort(), [...CREDENTIAL_CHANGE_AUDIT_TYPES].sort())
})

t.test('an audit event without a user makes no event', async (t) => {
  await app.db.auditEvent.create({ data: { type: 'password_changed' } })
  t.same(await drain(app, receiver, stream), [])
})

t.test('every mapping gives CAEP claims', async (t) => {
  for (const type of CREDENTIAL_CHANGE_AUDIT_TYPES) {
    for (const details of [{}, { deviceType: 'singleDevice', aaguid: 'ee882879-721c-4913-9775-3dfcce97072a' }, { deviceType: 'multiDevice' }, { passkeys: 2, apiKeys: 1 }]) {
      const event = credentialChangeEvent({ audit_type: type, details, initiating_entity: 'user', event_timestamp: 1 })
      t.ok(event !== null && CREDENTIAL_TYPES.includes(event.credential_type as string), `${type}: credential_type ${String(event?.credential_type)}`)
      t.ok(CHANGE_TYPES.includes(event?.change_type as string), `${type}: change_type ${String(event?.change_type)}`)
    }
  }
  t.equal(credentialChangeEvent({ audit_type: 'login_succeeded' }), null, 'not a credential change')
  t.same(CREDENTIAL_CHANGES.passkey_registered({ deviceType: 'singleDevice', aaguid: 'ee882879-721c-4913-9775-3dfcce97072a' }), {
    credential_type: 'fido2-roaming',
    change_type: 'create',
    fido2_aaguid: 'ee882879-721c-4913-9775-3dfcce97072a',
  })
})

t.test('who initiated it: the user, an admin, or the system', async (t) => {
  await app.db.auditEvent.create({ data: { type: 'second_factors_reset', userId: user.id, actorId: receiver.admin.id } })
  await app.db.auditEvent.create({ data: { type: 'api_key_revoked', userId: user.id, actorId: null } })
  const sets = await drain(app, receiver, stream)
  t.match(sets.map((set) => set.events[CREDENTIAL_CHANGE]), [
    { credential_type: 'app', change_type: 'delete', initiating_entity: 'admin' },
    { credential_type: 'api-key', change_type: 'revoke', initiating_entity: 'system' },
  ])
})
