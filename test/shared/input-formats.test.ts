import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import t from 'tap'
import Type from 'typebox'
import { DateTimeInput, installInputRules, LOWER_CASE, NO_NUL, Uuid, withInputRules } from '../../src/shared/input-formats.js'
import { Password } from '../../src/features/accounts/schemas.js'

/**
 * The Ajv rules every request goes through (installed by app.ts): ids
 * lower-cased, strict uuid and date-time formats replacing ajv-formats'
 * lax ones, and U+0000 refused in every string unless a schema opts out.
 */

const ajv = () => installInputRules(addFormats.default(new Ajv({ strict: false, coerceTypes: 'array' })))
const ID = '0f8fad5b-d9cb-469f-a165-70867728950e'

t.test('ajv-formats alone takes what the database cannot (the reason for these rules)', async (t) => {
  const lax = addFormats.default(new Ajv({ strict: false }))
  t.ok(lax.validate({ type: 'string', format: 'uuid' }, `urn:uuid:${ID}`), 'its uuid takes a urn:uuid: prefix')
  t.ok(lax.validate({ type: 'string', format: 'date-time' }, '2016-12-31T23:59:60Z'), 'its date-time takes a leap second')
})

t.test('a Uuid is strict and reaches the handler lower-cased', async (t) => {
  const validate = ajv().compile(withInputRules(Type.Object({ id: Uuid, ids: Type.Array(Uuid) })))
  const data = { id: ID.toUpperCase(), ids: [ID.toUpperCase(), ID] }
  t.ok(validate(data))
  t.same(data, { id: ID, ids: [ID, ID] }, 'in objects and arrays')
  for (const bad of [`urn:uuid:${ID}`, `{${ID}}`, ID.replaceAll('-', '')]) {
    t.notOk(validate({ id: bad, ids: [] }), bad)
  }
  t.equal((Uuid as unknown as Record<string, unknown>)[LOWER_CASE], true, 'the schema says so (and the OpenAPI document shows it)')
  // A route that writes a plain uuid format instead of Uuid gets the same canonical form.
  const plain = ajv().compile(withInputRules(Type.Object({ id: Type.String({ format: 'uuid' }) })))
  const other = { id: ID.toUpperCase() }
  t.ok(plain(other))
  t.equal(other.id, ID, "a plain format: 'uuid' string is lower-cased too")
  t.notOk(plain({ id: `urn:uuid:${ID}` }), 'and strict')
})

t.test('date-time: the strict format replaces the lax one, also without the pattern', async (t) => {
  const a = ajv()
  const bare = a.compile({ type: 'string', format: 'date-time' })
  const input = a.compile(DateTimeInput)
  for (const bad of ['2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '10000-01-01T00:00:00Z']) {
    t.notOk(bare(bad), `format alone: ${bad}`)
    t.notOk(input(bad), `DateTimeInput: ${bad}`)
  }
  t.ok(input('2026-12-02T00:00:00.5-03:00'))
  t.notOk(a.validate({ type: 'string', format: 'uuid' }, `urn:uuid:${ID}`), 'uuid format alone is strict too')
})

t.test('withInputRules: every string refuses U+0000, nested anywhere, unless it opts out', async (t) => {
  const schema = Type.Object({
    name: Type.String(),
    tags: Type.Array(Type.String()),
    either: Type.Union([Type.String({ maxLength: 5 }), Type.Null()]),
    nested: Type.Object({ deeper: Type.Optional(Type.String({ pattern: '^[\\s\\S]*$' })) }),
    free: Type.Record(Type.String(), Type.String()),
    password: Password,
  })
  const validate = ajv().compile(withInputRules(schema))
  const good = { name: 'a', tags: ['b'], either: null, nested: {}, free: {}, password: 'p\u0000w' }
  t.ok(validate(good), 'a password may hold U+0000 (hashed, never stored as text)')
  for (const [label, bad] of [
    ['a property', { ...good, name: 'a\u0000' }],
    ['an array item', { ...good, tags: ['\u0000'] }],
    ['a union member', { ...good, either: '\u0000' }],
    ['a nested string whose pattern allows it', { ...good, nested: { deeper: 'x\u0000' } }],
    ['a record value', { ...good, free: { k: '\u0000' } }],
  ] as const) {
    t.notOk(validate(bad), `${label}: refused`)
    t.match(validate.errors?.[0]?.message, /U\+0000/, `${label}: the message names the character`)
  }
  t.notOk(NO_NUL in schema.properties.name, 'the route schema itself is not modified')
  t.equal((Password as unknown as Record<string, unknown>)[NO_NUL], false, 'passwords opt out explicitly')
})
