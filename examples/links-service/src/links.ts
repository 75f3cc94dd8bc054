import type pg from 'pg'
import { generateCode } from './codes.js'

export interface Link {
  code: string
  url: string
  ownerId: string
  createdVia: 'user' | 'api_key'
  createdAt: Date
}

interface LinkRow {
  code: string
  url: string
  owner_id: string
  created_via: 'user' | 'api_key'
  created_at: Date
  /** created_at to the microsecond, for the cursor (a JS Date keeps milliseconds only). */
  cursor_at: string
}

const COLUMNS = `code, url, owner_id, created_via, created_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at`

const toLink = (row: LinkRow): Link => ({
  code: row.code,
  url: row.url,
  ownerId: row.owner_id,
  createdVia: row.created_via,
  createdAt: row.created_at,
})

/** The links table, through pg. */
export class LinkStore {
  constructor (private readonly pool: pg.Pool) {}

  /** Inserts a link under a fresh random code, drawing again on the (rare) collision. */
  async create (input: { url: string; ownerId: string; createdVia: Link['createdVia'] }): Promise<Link> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { rows } = await this.pool.query<LinkRow>(
        `INSERT INTO links_short_links (code, url, owner_id, created_via) VALUES ($1, $2, $3, $4)
         ON CONFLICT (code) DO NOTHING RETURNING ${COLUMNS}`,
        [generateCode(), input.url, input.ownerId, input.createdVia]
      )
      if (rows[0]) return toLink(rows[0])
    }
    throw new Error('could not draw a free short code')
  }

  async find (code: string): Promise<Link | null> {
    const { rows } = await this.pool.query<LinkRow>(`SELECT ${COLUMNS} FROM links_short_links WHERE code = $1`, [code])
    return rows[0] ? toLink(rows[0]) : null
  }

  /**
   * Newest first, `limit` at a time; `ownerId` null lists everyone's. The
   * cursor is the (created_at, code) of the last row returned: stable while
   * links are added.
   */
  async list (input: { ownerId: string | null; limit: number; cursor?: string }): Promise<{ items: Link[]; nextCursor: string | null }> {
    const params: unknown[] = []
    const where: string[] = []
    if (input.ownerId !== null) {
      params.push(input.ownerId)
      where.push(`owner_id = $${params.length}`)
    }
    const after = input.cursor ? decodeCursor(input.cursor) : null
    if (after) {
      params.push(after.at, after.code)
      where.push(`(created_at, code) < ($${params.length - 1}::timestamptz, $${params.length})`)
    }
    params.push(input.limit + 1)
    const { rows } = await this.pool.query<LinkRow>(
      `SELECT ${COLUMNS} FROM links_short_links ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, code DESC LIMIT $${params.length}`,
      params
    )
    const page = rows.slice(0, input.limit)
    const last = page[page.length - 1]
    return {
      items: page.map(toLink),
      nextCursor: rows.length > input.limit && last ? encodeCursor(last.cursor_at, last.code) : null,
    }
  }

  /** Deletes a link; with `ownerId`, only if it is theirs. True when a row went. */
  async delete (code: string, ownerId: string | null): Promise<boolean> {
    const result =
      ownerId === null
        ? await this.pool.query('DELETE FROM links_short_links WHERE code = $1', [code])
        : await this.pool.query('DELETE FROM links_short_links WHERE code = $1 AND owner_id = $2', [code, ownerId])
    return (result.rowCount ?? 0) > 0
  }
}

export class InvalidCursorError extends Error {}

function encodeCursor (at: string, code: string): string {
  return Buffer.from(JSON.stringify([at, code])).toString('base64url')
}

function decodeCursor (cursor: string): { at: string; code: string } {
  try {
    const [at, code] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[]
    if (typeof at === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(at) && typeof code === 'string' && /^[0-9A-Za-z]{1,16}$/.test(code)) {
      return { at, code }
    }
  } catch {
    // fall through
  }
  throw new InvalidCursorError('invalid cursor')
}
