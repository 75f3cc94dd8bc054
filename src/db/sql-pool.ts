import type pg from 'pg'

/**
 * Raw SQL for the hot paths, on the pool under the Prisma client. A statement
 * may be named (a prepared statement): Postgres then parses and plans it once
 * per connection instead of on every call, which for the rotation statement
 * costs more than running it.
 */
export interface SqlPool {
  query<R extends pg.QueryResultRow>(statement: pg.QueryConfig): Promise<pg.QueryResult<R>>
}

/**
 * Errors raised at Parse or Bind, before anything ran, by a server whose
 * backend sessions do not follow pg's connections: the embedded PGlite (one
 * session behind every socket connection, so a name prepared on one
 * connection already exists for the next) or a pooler in transaction mode
 * without prepared-statement support (the name lives on another server
 * connection).
 */
const SESSION_MISMATCH = new Set(['42P05' /* duplicate_prepared_statement */, '26000'])

/**
 * Runs named statements on `pool` while the server keeps prepared statements
 * per connection, and unnamed from the first sign that it does not (see
 * SESSION_MISMATCH; that statement is retried unnamed, which is safe since it
 * never ran). `named: false` starts unnamed.
 */
export function statementPool (pool: pg.Pool, options: { named: boolean; onUnnamed?: (error: Error) => void }): SqlPool {
  let named = options.named
  const unnamed = (statement: pg.QueryConfig) => pool.query({ ...statement, name: undefined })
  return {
    async query (statement) {
      if (!named || !statement.name) return unnamed(statement)
      try {
        return await pool.query(statement)
      } catch (error) {
        if (!SESSION_MISMATCH.has((error as { code?: string }).code ?? '')) throw error
        if (named) {
          // Once, though statements in flight on other connections may hit it too.
          named = false
          options.onUnnamed?.(error as Error)
        }
        return unnamed(statement)
      }
    },
  }
}
