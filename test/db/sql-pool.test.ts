import pg from 'pg'
import t from 'tap'
import { statementPool } from '../../src/db/sql-pool.js'
import { createTestDatabase } from '../helpers/database.js'

/**
 * Named statements on the hot path (src/db/sql-pool.ts): prepared once per
 * connection, and unnamed from the first sign that the server does not keep
 * them per connection, without losing the statement that showed it.
 */

const database = await createTestDatabase({ migrated: false })
const pools: pg.Pool[] = []
// The pools end before the database is dropped: a drop (WITH FORCE) ends their
// idle connections, which an open pool reports as an error of its own.
t.teardown(async () => {
  await Promise.all(pools.map((pool) => pool.end()))
  await database.drop()
})

// One connection, so that what one query prepares the next one sees (pg-pool
// replaces a connection after a query error; PGlite's one session outlives it).
function onePool () {
  const pool = new pg.Pool({ connectionString: database.url, max: 1 })
  pools.push(pool)
  return pool
}

const prepared = async (pool: pg.Pool) =>
  (await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')).rows.map((r) => r.name)

t.test('a named statement is prepared once and then reused on its connection', async (t) => {
  const pool = onePool()
  const fallbacks: Error[] = []
  const sql = statementPool(pool, { named: true, onUnnamed: (e) => fallbacks.push(e) })
  for (const n of [1, 2, 3]) {
    const { rows } = await sql.query<{ n: number }>({ name: 'sql_pool_add', text: 'SELECT $1::int + 1 AS n', values: [n] })
    t.equal(rows[0]!.n, n + 1)
  }
  t.same(await prepared(pool), ['sql_pool_add'], 'the server holds it, once')
  t.same(fallbacks, [], 'no fallback')
})

t.test('a name the server already holds for another session: that statement runs unnamed, and every one after it', async (t) => {
  const pool = onePool()
  // What PGlite's shared session shows the second connection: the name exists, pg does not know it.
  await pool.query('PREPARE sql_pool_clash AS SELECT 0 AS n')
  const fallbacks: Error[] = []
  const sql = statementPool(pool, { named: true, onUnnamed: (e) => fallbacks.push(e) })
  const first = await sql.query<{ n: number }>({ name: 'sql_pool_clash', text: 'SELECT $1::int AS n', values: [7] })
  t.equal(first.rows[0]!.n, 7, 'the statement that hit the clash still answers, from its own text')
  t.equal(fallbacks.length, 1)
  t.match(fallbacks[0], { code: '42P05' })
  const second = await sql.query<{ n: number }>({ name: 'sql_pool_other', text: 'SELECT $1::int AS n', values: [8] })
  t.equal(second.rows[0]!.n, 8)
  t.notOk((await prepared(pool)).includes('sql_pool_other'), 'nothing named after the fallback')
  t.equal(fallbacks.length, 1, 'reported once')
})

t.test('a statement that changes data and hits the clash runs exactly once', async (t) => {
  const pool = onePool()
  await pool.query('CREATE TABLE sql_pool_counter (n int NOT NULL)')
  await pool.query('INSERT INTO sql_pool_counter VALUES (0)')
  await pool.query('PREPARE sql_pool_bump AS SELECT 1')
  const sql = statementPool(pool, { named: true })
  await sql.query({ name: 'sql_pool_bump', text: 'UPDATE sql_pool_counter SET n = n + $1', values: [1] })
  t.equal((await pool.query<{ n: number }>('SELECT n FROM sql_pool_counter')).rows[0]!.n, 1)
})

t.test('other errors pass through and keep statements named', async (t) => {
  const pool = onePool()
  const fallbacks: Error[] = []
  const sql = statementPool(pool, { named: true, onUnnamed: (e) => fallbacks.push(e) })
  await t.rejects(sql.query({ name: 'sql_pool_bad', text: 'SELECT FROM WHERE', values: [] }), { code: '42601' })
  await t.rejects(sql.query({ name: 'sql_pool_div', text: 'SELECT 1 / $1::int', values: [0] }), { code: '22012' })
  t.same(fallbacks, [])
  await sql.query({ name: 'sql_pool_ok', text: 'SELECT 1', values: [] })
  t.ok((await prepared(pool)).includes('sql_pool_ok'), 'still naming')
})

t.test('named: false never prepares', async (t) => {
  const pool = onePool()
  const sql = statementPool(pool, { named: false })
  await sql.query({ name: 'sql_pool_never', text: 'SELECT 1', values: [] })
  t.notOk((await prepared(pool)).includes('sql_pool_never'))
})
