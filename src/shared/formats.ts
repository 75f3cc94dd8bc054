/**
 * The shapes of values that come from outside and reach the database: what
 * Postgres and JavaScript can both hold, so that a well-formed request never
 * becomes a database error (a 500) and no two spellings of one value compare
 * unequal. The schema layer (src/shared/input-formats.ts) applies these at the
 * HTTP boundary; the domain uses them where it decodes values itself
 * (pagination cursors).
 */

/**
 * A hyphenated UUID (RFC 9562 §4), nothing around it: no `urn:uuid:` prefix
 * (a URN names a UUID, it is not one), no braces, no missing hyphens. Hex
 * digits are case-insensitive on input (RFC 9562 §4); the canonical form,
 * stored and compared, is lower case.
 */
export const UUID_PATTERN = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
const UUID = new RegExp(UUID_PATTERN)
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function isUuid (value: string): boolean {
  return UUID.test(value)
}

/** The lower-case form that ids are stored and compared in. */
export function canonicalUuid (value: string): string {
  return value.toLowerCase()
}

export function isCanonicalUuid (value: string): boolean {
  return CANONICAL_UUID.test(value)
}

/**
 * Instants both Postgres timestamptz (4713 BC to 294276 AD) and a JavaScript
 * Date (±273 790 years around 1970) hold, and that RFC 3339's four-digit
 * year can write back in UTC: 0001-01-01T00:00:00.000Z to
 * 9999-12-31T23:59:59.999Z.
 */
export const EARLIEST_INSTANT_MS = Date.parse('0001-01-01T00:00:00.000Z')
export const LATEST_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z')

export function isStorableInstant (ms: number): boolean {
  return Number.isFinite(ms) && ms >= EARLIEST_INSTANT_MS && ms <= LATEST_INSTANT_MS
}

/**
 * RFC 3339 §5.6 date-time, as this service takes it: four-digit year, real
 * calendar day, seconds 00-59, at most nine fraction digits, `Z` or a
 * ±hh:mm offset ("T" and "Z" in either case, §5.6 note). A leap second
 * (:60) is refused: neither a JavaScript Date nor Postgres can represent it
 * (Postgres silently moves it to the next minute), and RFC 9557 keeps the
 * RFC 3339 syntax without giving it a meaning. The pattern is the syntax
 * only; `parseDateTime` checks the calendar and the storable range.
 */
export const DATE_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:[0-5]\\d(?:\\.\\d{1,9})?(?:[Zz]|[+-]\\d{2}:\\d{2})$'
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function daysIn (year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!
}

/** The instant an RFC 3339 date-time names, or null if it is malformed or outside the storable range. */
export function parseDateTime (text: string): Date | null {
  const match = DATE_TIME.exec(text)
  if (!match) return null
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null
  if (hour > 23 || minute > 59 || second > 59) return null
  let offsetMinutes = 0
  if (match[8]) {
    const offsetHours = Number(match[9])
    const offsetRest = Number(match[10])
    if (offsetHours > 23 || offsetRest > 59) return null
    offsetMinutes = (match[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetRest)
  }
  const milliseconds = Number((match[7] ?? '').padEnd(3, '0').slice(0, 3))
  const local = new Date(0)
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  local.setUTCFullYear(year, month - 1, day)
  local.setUTCHours(hour, minute, second, milliseconds)
  const instant = local.getTime() - offsetMinutes * 60_000
  return isStorableInstant(instant) ? new Date(instant) : null
}

/** The largest value of a Postgres bigint (audit event ids): 2^63 − 1. */
export const MAX_BIGINT = 9_223_372_036_854_775_807n
