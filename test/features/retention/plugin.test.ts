import t, { type Test } from 'tap'
import { buildTestApp } from '../../helpers/app.js'
import { injectAs, signup } from '../../helpers/users.js'

/** The retention plugin runs passes by itself, every RETENTION_INTERVAL_SECONDS, and stops with the app. */

/** An app with this retention interval, holding a user whose only session has been dead for 31 days. */
async function appWithDeadSession (t: Test, intervalSeconds: string) {
  const { app, clock, close } = await buildTestApp({ RETENTION_INTERVAL_SECONDS: intervalSeconds })
  t.teardown(close)
  const user = await signup(app)
  await injectAs(app, user.access_token, 'POST', '/auth/logout')
  clock.advance(31 * 24 * 3600)
  return { app, user }
}

t.test('every instance runs retention passes on its own timer', async (t) => {
  const { app, user } = await appWithDeadSession(t, '1')
  let left = 1
  for (const started = Date.now(); Date.now() - started < 10_000 && left > 0;) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    left = await app.db.session.count({ where: { userId: user.id } })
  }
  t.equal(left, 0, 'the dead session was deleted without anyone asking')
})

t.test('RETENTION_INTERVAL_SECONDS=0: no pass unless asked', async (t) => {
  const { app, user } = await appWithDeadSession(t, '0')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(await app.db.session.count({ where: { userId: user.id } }), 1, 'still there')
  await app.retention.runPass()
  t.equal(await app.db.session.count({ where: { userId: user.id } }), 0, 'deleted by an explicit pass')
})
