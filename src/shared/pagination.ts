/**
 * Keyset pagination shared by the lists of the API (admin users and audit
 * events, a user's API keys): a page is `{items, nextCursor}`, and a cursor
 * is an opaque base64url JSON of the last item's sort key, so a page never
 * repeats or skips a row because others were written meanwhile.
 */

import { DomainError } from '../errors.js'
import type { Page } from './pagination-schemas.js'
import { isCanonicalUuid, parseDateTime } from './formats.js'

export function encodeCursor (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

export function decodeCursor<T> (cursor: string, isValid: (value: unknown) => value is T): T {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (isValid(value)) return value
  } catch {
    // fall through
  }
  throw new DomainError('invalid_cursor', 'the cursor is not one this API returned')
}

/**
 * A cursor is checked as a whole against what encodeCursor writes: exactly
 * its fields, each in the form this API issues (a canonical lower-case id,
 * an instant as toISOString writes it within the storable range). Anything
 * else is not one of ours, however it decodes.
 */
export function hasExactly (value: unknown, keys: string[]): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const own = Object.keys(value)
  return own.length === keys.length && keys.every((key) => own.includes(key))
}

/** The cursor of lists ordered newest first by (created_at, id). */
export function isCreatedCursor (value: unknown): value is { at: string; id: string } {
  if (!hasExactly(value, ['at', 'id']) || typeof value.at !== 'string' || typeof value.id !== 'string') return false
  const at = parseDateTime(value.at)
  return at !== null && at.toISOString() === value.at && isCanonicalUuid(value.id)
}

/** The condition "after this cursor" in a (created_at desc, id desc) order. */
export function createdBefore (cursor: { at: string; id: string }) {
  const at = new Date(cursor.at)
  return { OR: [{ createdAt: { lt: at } }, { createdAt: at, id: { lt: cursor.id } }] }
}

/** The page of `limit` items from `limit + 1` rows fetched, and the cursor after its last item. */
export function pageOf<T extends { createdAt: Date; id: string }> (rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit)
  const last = items.at(-1)
  return { items, nextCursor: rows.length > limit && last ? encodeCursor({ at: last.createdAt.toISOString(), id: last.id }) : null }
}
