import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { MIGRATIONS_DIR, migrate } from '../../src/db/migrate.js'
import { buildTestApp, json } from '../helpers/app.js'
import { createTestDatabase, withClient } from '../helpers/database.js'
import { refresh, signup } from '../helpers/users.js'

/**
 * The upgrade to one row per session (migration 20261202100000, issue #13):
 * a database with sessions and refresh tokens of the old layout migrates like
 * any other; the sessions open at the upgrade end cleanly, and their refresh
 * tokens get invalid_grant, never a 500.
 */

const UPGRADE = '20261202100000_sessions_hold_their_token'

t.test('sessions of the old layout end at the upgrade; their refresh tokens are invalid_grant', async (t) => {
  const database = await createTestDatabase({ migrated: false })
  t.teardown(() => database.drop())
  // The schema as it was before the upgrade: every migration before it.
  const before = await mkdtemp(join(tmpdir(), 'migrations-before-'))
  t.teardown(() => rm(before, { recursive: true, force: true }))
  for (const name of (await readdir(MIGRATIONS_DIR)).filter((n) => n < UPGRADE && !n.endsWith('.toml'))) {
    await cp(join(MIGRATIONS_DIR, name), join(before, name), { recursive: true })
  }
  await migrate(database.url, { dir: before })

  const oldToken = randomBytes(32).toString('base64url')
  const sessionId = await withClient(database.url, async (db) => {
    const { rows: [user] } = await db.query<{ id: string }>(
      "INSERT INTO users (email, password_hash) VALUES ('upgrade@users.test', 'not a real hash') RETURNING id"
    )
    const { rows: [session] } = await db.query<{ id: string }>(
      `INSERT INTO sessions (user_id, client_id, idle_ttl_seconds, idle_expires_at, absolute_expires_at)
       VALUES ($1, 'mobile', 604800, now() + interval '7 days', now() + interval '30 days') RETURNING id`,
      [user!.id]
    )
    await db.query('INSERT INTO refresh_tokens (session_id, token_hash) VALUES ($1, $2)', [session!.id, randomBytes(32)])
    return session!.id
  })

  // The service migrates at start, as after a deploy.
  const { app, close } = await buildTestApp({}, { database })
  t.teardown(close)
  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.ok(session.revokedAt, 'the session open at the upgrade is revoked')
  t.equal(session.revokedReason, 'storage_upgrade')
  t.equal(session.refreshTokenHash, null, 'it holds no refresh token of the new layout')
  const tables = await withClient(database.url, (db) => db.query("SELECT to_regclass('refresh_tokens') AS found"))
  t.equal(tables.rows[0].found, null, 'refresh_tokens is gone')

  const response = await refresh(app, oldToken)
  t.equal(response.statusCode, 400, 'a pre-upgrade refresh token: 400, not a 500')
  t.equal(json(response).error, 'invalid_grant')
  t.equal(app.revocations.refusal({ sid: sessionId, sub: session.userId, role: 'user', iat: Math.floor(Date.now() / 1000) }), 'session revoked', 'its access tokens are refused')

  const user = await signup(app)
  t.equal((await refresh(app, user.refresh_token)).statusCode, 200, 'new sessions work')
})
