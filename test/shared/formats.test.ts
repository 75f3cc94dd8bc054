import t from 'tap'
import { canonicalUuid, EARLIEST_INSTANT_MS, isUuid, LATEST_INSTANT_MS, parseDateTime } from '../../src/shared/formats.js'

/**
 * The value shapes both Postgres and JavaScript hold (src/shared/formats.ts):
 * strict hyphenated UUIDs (RFC 9562 §4) and RFC 3339 §5.6 date-times with
 * years 0001-9999, real calendar days and no leap second.
 */

t.test('uuid: hyphenated hex in any case, nothing around it', async (t) => {
  const id = '0f8fad5b-d9cb-469f-a165-70867728950e'
  for (const good of [id, id.toUpperCase(), '00000000-0000-0000-0000-000000000000', 'FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF']) t.ok(isUuid(good), good)
  for (const bad of [`urn:uuid:${id}`, `URN:UUID:${id}`, `{${id}}`, id.replaceAll('-', ''), ` ${id}`, `${id}\n`, `${id}\u0000`, id.replace('0', 'g'), id.slice(1), `${id}0`, '']) {
    t.notOk(isUuid(bad), JSON.stringify(bad))
  }
  t.equal(canonicalUuid(id.toUpperCase()), id, 'the canonical form is lower case')
})

t.test('date-time: RFC 3339 inside the storable range', async (t) => {
  const iso = (text: string) => parseDateTime(text)?.toISOString() ?? null
  t.equal(iso('2026-12-02T01:02:03Z'), '2026-12-02T01:02:03.000Z')
  t.equal(iso('2026-12-02t01:02:03z'), '2026-12-02T01:02:03.000Z', 'T and Z in either case (RFC 3339 §5.6 note)')
  t.equal(iso('2026-12-02T01:02:03.123456789+01:30'), '2026-12-01T23:32:03.123Z', 'an offset and nine fraction digits (truncated to ms)')
  t.equal(iso('2024-02-29T00:00:00Z'), '2024-02-29T00:00:00.000Z', 'a leap day')
  t.equal(iso('2000-02-29T00:00:00Z'), '2000-02-29T00:00:00.000Z', 'a leap day of a 400-year')
  t.equal(iso('0001-01-01T00:00:00Z'), '0001-01-01T00:00:00.000Z', 'the first storable instant')
  t.equal(iso('0050-06-01T00:00:00Z'), '0050-06-01T00:00:00.000Z', 'years below 100 stay themselves (no 1900 offset)')
  t.equal(iso('9999-12-31T23:59:59.999Z'), '9999-12-31T23:59:59.999Z', 'the last storable instant')
  t.equal(parseDateTime('0001-01-01T00:00:00Z')!.getTime(), EARLIEST_INSTANT_MS)
  t.equal(parseDateTime('9999-12-31T23:59:59.999Z')!.getTime(), LATEST_INSTANT_MS)
  for (const bad of [
    '2016-12-31T23:59:60Z', // a real leap second: no Date or Postgres value for it
    '2016-12-31T23:59:60.5+00:00',
    '0000-01-01T00:00:00Z', // year 0: Postgres refuses it
    '0001-01-01T00:00:00+00:01', // year 0 in UTC
    '9999-12-31T23:59:59-00:01', // year 10000 in UTC
    '10000-01-01T00:00:00Z',
    '-271821-04-20T00:00:00.000Z',
    '+275760-09-13T00:00:00.000Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:60:00Z',
    '2026-01-01T00:00:00+24:00',
    '2026-01-01T00:00:00+01:60',
    '2026-01-01T00:00:00',
    '2026-01-01 00:00:00Z',
    '2026-01-01T00:00:00.Z',
    '2026-01-01T00:00:00.1234567890Z',
    '2026-01-01',
    'Wed, 02 Dec 2026 00:00:00 GMT',
    '1796000000000',
    '2026-01-01T00:00:00Z\u0000',
    '',
  ]) {
    t.equal(parseDateTime(bad), null, JSON.stringify(bad))
  }
})
