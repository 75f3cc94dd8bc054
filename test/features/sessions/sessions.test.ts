import t from 'tap'
import { RECENT_RETIREMENTS } from '../../../src/features/sessions/sessions.js'
import { fileTestApp } from '../../helpers/app.js'
import { signup } from '../../helpers/users.js'

/**
 * The session store's storage (DESIGN §3.13): one row per session whatever
 * its rotations, every token it ever issued still recognised, and tokens that
 * are not ours refused without a database round trip.
 */

const { app, clock } = await fileTestApp()

/** Counts the statements the store sends to the database while `run` runs. */
async function statementsDuring (run: () => Promise<unknown>): Promise<number> {
  const sql = app.sql
  const original = sql.query.bind(sql)
  const db = app.db as unknown as { $queryRaw: (...args: unknown[]) => unknown; $transaction: (...args: unknown[]) => unknown }
  const originalRaw = db.$queryRaw.bind(db)
  const originalTransaction = db.$transaction.bind(db)
  let count = 0
  sql.query = ((statement: Parameters<typeof original>[0]) => { count++; return original(statement) }) as typeof sql.query
  db.$queryRaw = (...args: unknown[]) => { count++; return originalRaw(...args) }
  db.$transaction = (...args: unknown[]) => { count++; return originalTransaction(...args) }
  try {
    await run()
  } finally {
    sql.query = original
    db.$queryRaw = originalRaw
    db.$transaction = originalTransaction
  }
  return count
}

async function rowOf (sessionId: string) {
  const { rows } = await app.sql.query<{ rows: number; bytes: number }>({
    text: 'SELECT count(*)::int AS rows, coalesce(sum(pg_column_size(s.*)), 0)::int AS bytes FROM sessions AS s WHERE id = $1',
    values: [sessionId],
  })
  return rows[0]!
}

const ROTATIONS = Number(process.env.SESSION_TEST_ROTATIONS ?? 10_000)

t.test(`after ${ROTATIONS} rotations a session is still one row of the same size, and its first token still revokes it`, async (t) => {
  const user = await signup(app)
  const first = user.refresh_token
  const { sessionId } = app.sessions.readRefreshToken(first)!
  const rotated = await app.sessions.rotate(first, 'mobile')
  if (!rotated.ok) throw new Error('first rotation failed')
  const afterOne = await rowOf(sessionId)
  t.equal(afterOne.rows, 1, 'one row after one rotation')

  let token = rotated.refreshToken
  let afterFull = afterOne
  for (let i = 1; i < ROTATIONS; i++) {
    const result = await app.sessions.rotate(token, 'mobile')
    if (!result.ok) throw new Error(`rotation ${i + 1} failed: ${result.reason}`)
    token = result.refreshToken
    if (i + 1 === RECENT_RETIREMENTS) afterFull = await rowOf(sessionId)
  }
  t.equal(app.sessions.readRefreshToken(token)?.generation, ROTATIONS, `the live token is generation ${ROTATIONS}`)
  const afterMany = await rowOf(sessionId)
  t.equal(afterMany.rows, 1, `one row after ${ROTATIONS} rotations`)
  // The row keeps the last RECENT_RETIREMENTS retirement times (8 bytes
  // each); once that list is full, its size is fixed for good.
  t.equal(afterFull.bytes - afterOne.bytes, (RECENT_RETIREMENTS - 1) * 8, `the retirement list grows to its bound: ${afterOne.bytes} bytes after 1 rotation, ${afterFull.bytes} after ${RECENT_RETIREMENTS}`)
  t.equal(afterMany.bytes, afterFull.bytes, `and then stays: ${afterMany.bytes} bytes after ${ROTATIONS}`)

  clock.advance(app.config.refreshGraceSeconds + 1)
  const reuse = await app.sessions.rotate(first, 'mobile')
  t.same(reuse, { ok: false, reason: 'reused', sessionId, userId: user.id }, 'the very first token is recognised as reuse')
  const session = await app.db.session.findUniqueOrThrow({ where: { id: sessionId } })
  t.equal(session.revokedReason, 'refresh_token_reused', 'and the session is revoked')
  t.match(await app.sessions.rotate(token, 'mobile'), { ok: false, reason: 'revoked' }, 'its live token died with it')
})

t.test('a token that is not ours costs no database statement', async (t) => {
  const user = await signup(app)
  const bytes = Buffer.from(user.refresh_token, 'base64url')
  bytes.writeUInt32BE(0, 17)
  bytes[60] = bytes[60]! ^ 0xff
  const forged = [bytes.toString('base64url'), 'A'.repeat(92), 'A'.repeat(43), 'x']
  for (const token of forged) {
    let result
    const statements = await statementsDuring(async () => {
      result = await app.sessions.rotate(token, 'mobile')
      await app.sessions.findByRefreshToken(token)
      await app.sessions.liveGrant({ refreshToken: token })
    })
    t.same(result, { ok: false, reason: 'unknown' }, `${token.slice(0, 8)}…: unknown`)
    t.equal(statements, 0, `${token.slice(0, 8)}…: no statement sent`)
  }
  t.equal(await statementsDuring(() => app.sessions.rotate(user.refresh_token, 'mobile')), 1, 'a genuine rotation is one statement')
})
