import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { fileTestApp, json } from '../../helpers/app.js'
import { withClient } from '../../helpers/database.js'
import { holdNextSessionStart } from '../../helpers/hold.js'
import * as users from '../../helpers/users.js'
import { sidOf } from '../../helpers/users.js'

/**
 * A login races a change of the credential or role it was verified against
 * (security review findings 3 and 4): a password grant verified with the old
 * password, or while the user had the old role, must not open a session once
 * the change has committed. Each race is made deterministic: the login is
 * held between its password check and its session insert (a gate in front of
 * SessionStore.start) while the change runs, then released.
 */

const main = await fileTestApp()
const { app } = main
const PASSWORD = 'an old fine passphrase'
const NEW_PASSWORD = 'a new fine passphrase'

type Response = LightMyRequestResponse

/** These accounts start with PASSWORD (the "old" one), not the shared helpers' default. */
const signup = (label: string) => users.signup(app, { label, password: PASSWORD })
const passwordGrant = (email: string, password = PASSWORD) => users.passwordGrant(app, email, { password })

/** PATCH /admin/users/:id as the admin holding `adminToken`. */
function patchUser (adminToken: string, userId: string, payload: Record<string, unknown>) {
  return app.inject({ method: 'PATCH', url: `/admin/users/${userId}`, headers: { authorization: `Bearer ${adminToken}` }, payload })
}

async function liveSessionIds (userId: string): Promise<string[]> {
  const rows = await app.db.session.findMany({ where: { userId, revokedAt: null }, select: { id: true } })
  return rows.map((row) => row.id)
}

function assertInvalidGrant (t: Test, response: Response, what: string) {
  t.equal(response.statusCode, 400, `${what}: 400 (${response.body})`)
  t.equal(json(response).error, 'invalid_grant', `${what}: invalid_grant`)
}

t.test('a login checked against the old password, held while the password changes, opens no session', async (t) => {
  const user = await signup('password-race')
  const held = holdNextSessionStart(app)
  const login = passwordGrant(user.email)
  await held.reached
  const change = await app.inject({
    method: 'POST',
    url: '/users/me/password',
    headers: { authorization: `Bearer ${user.access_token}` },
    payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
  })
  t.equal(change.statusCode, 204, `password changed while the login waits (${change.body})`)
  held.release()
  assertInvalidGrant(t, await login, 'the login that lost the race')
  t.same(await liveSessionIds(user.id), [sidOf(user.access_token)], 'only the session that changed the password is live')
  const failed = await app.db.auditEvent.findFirst({ where: { userId: user.id, type: 'login_failed' }, orderBy: { id: 'desc' } })
  t.match(failed?.details, { reason: 'account_changed_during_login' }, 'the lost race is audited')
  t.equal((await passwordGrant(user.email, NEW_PASSWORD)).statusCode, 200, 'the new password signs in')
  assertInvalidGrant(t, await passwordGrant(user.email), 'the old password no longer signs in')
})

t.test('a login whose insert waits on a password change still open in the database sees it commit, and opens no session', async (t) => {
  // Finding 3 at the database: the change has rewritten the hash and revoked
  // the sessions but not yet committed when the login's insert runs. The
  // insert must wait for the user row and re-check it, not read the old hash.
  const user = await signup('password-race-db')
  const held = holdNextSessionStart(app)
  const login = passwordGrant(user.email)
  await held.reached
  const url = main.database.url
  await withClient(url, async (client) => {
    await client.query('BEGIN')
    await client.query("UPDATE users SET password_hash = 'changed elsewhere' WHERE id = $1", [user.id])
    await client.query("UPDATE sessions SET revoked_at = now(), revoked_reason = 'password_changed' WHERE user_id = $1 AND revoked_at IS NULL", [user.id])
    held.release()
    let settled = false
    void login.finally(() => (settled = true))
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.notOk(settled, 'the login waits for the open change')
    await client.query('COMMIT')
  })
  assertInvalidGrant(t, await login, 'the login that lost the race')
  t.same(await liveSessionIds(user.id), [], 'no session survives the change')
})

t.test('a login held while an admin promotes the user opens no session with a user\'s lifetimes and admin tokens', async (t) => {
  const adminToken = (await users.signupAdmin(app, { label: 'admin', password: PASSWORD }, { password: PASSWORD })).access_token
  const user = await signup('role-race')
  const held = holdNextSessionStart(app)
  const login = passwordGrant(user.email)
  await held.reached
  const patch = await patchUser(adminToken, user.id, { role: 'admin' })
  t.equal(patch.statusCode, 200, `promoted while the login waits (${patch.body})`)
  held.release()
  assertInvalidGrant(t, await login, 'the login that lost the race')
  t.same(await liveSessionIds(user.id), [], 'the promotion ended every session and none was opened after it')

  // Signing in again now gives admin tokens with an admin's lifetimes.
  const again = await passwordGrant(user.email)
  t.equal(again.statusCode, 200, again.body)
  const claims = JSON.parse(Buffer.from(json<{ access_token: string }>(again).access_token.split('.')[1]!, 'base64url').toString())
  t.equal(claims.role, 'admin')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: claims.sid } })
  t.equal(session.idleTtlSeconds, main.config.clients.admin!.refreshIdleTtlSeconds, "an admin's idle lifetime")
  t.ok(
    session.absoluteExpiresAt.getTime() - session.createdAt.getTime() <= main.config.clients.admin!.refreshAbsoluteTtlSeconds * 1000,
    "an admin's absolute lifetime"
  )
})

t.test('a login held while an admin disables the user opens no session', async (t) => {
  const adminToken = (await users.signupAdmin(app, { label: 'admin-disable', password: PASSWORD }, { password: PASSWORD })).access_token
  const user = await signup('disable-race')
  const held = holdNextSessionStart(app)
  const login = passwordGrant(user.email)
  await held.reached
  const patch = await patchUser(adminToken, user.id, { disabled: true })
  t.equal(patch.statusCode, 200, patch.body)
  held.release()
  assertInvalidGrant(t, await login, 'the login that lost the race')
  t.same(await liveSessionIds(user.id), [])
})
