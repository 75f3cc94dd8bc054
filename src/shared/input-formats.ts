import type { Ajv, SchemaValidateFunction } from 'ajv'
import Type from 'typebox'
import { DATE_TIME_PATTERN, isUuid, parseDateTime, UUID_PATTERN } from './formats.js'

/**
 * Input formats shared by every route, and the Ajv rules behind them
 * (installed on both validators by app.ts). ajv-formats' own `uuid` takes
 * `urn:uuid:` prefixes and its `date-time` takes leap seconds and years no
 * database column holds; both are replaced here by formats that accept only
 * what Postgres and JavaScript store (src/shared/formats.ts).
 */

/** Lower-cases a string in place before the handler sees it (its parent object is modified). */
export const LOWER_CASE = 'x-lower-case'
/**
 * Refuses U+0000 in a string: no Postgres text column can hold it (error
 * 22021). Added by `withInputRules` to every string schema of a request; a
 * schema opts out only by stating `'x-no-nul': false`: passwords (hashed,
 * never stored as text) and the introspected token (only hashed or parsed,
 * and RFC 7662 answers a non-token inactive, not an error).
 */
export const NO_NUL = 'x-no-nul'

/**
 * An id (RFC 9562 UUID) in a path, query or body. Any case is the same id
 * (RFC 9562 §4): it reaches the handler lower-cased, so every comparison and
 * look-up sees one canonical form.
 */
export const Uuid = Type.String({
  format: 'uuid',
  pattern: UUID_PATTERN,
  [LOWER_CASE]: true,
  description: 'a hyphenated UUID (RFC 9562), no urn:uuid: prefix; any case, lower-cased before use',
})

const DATE_TIME_RULE = 'RFC 3339 date-time, years 0001-9999 (also in UTC), seconds 00-59 (no leap second)'

/** An RFC 3339 date-time a client sends, as a string (the handler parses it); `about` says what it is. */
export const dateTimeInput = (about?: string) =>
  Type.String({ format: 'date-time', pattern: DATE_TIME_PATTERN, description: about ? `${about}; ${DATE_TIME_RULE}` : DATE_TIME_RULE })

export const DateTimeInput = dateTimeInput()

const dateTimeFormat = (text: string) => parseDateTime(text) !== null

/** Ajv reads a function keyword's errors from the function's own `errors` property. */
const refuseNul: SchemaValidateFunction = (enabled: boolean, data: unknown): boolean => {
  if (!enabled || typeof data !== 'string' || !data.includes('\u0000')) return true
  refuseNul.errors = [{ keyword: NO_NUL, message: 'must not contain U+0000 (NUL)', params: {} }]
  return false
}

/** Installs the formats and keywords above on one Ajv instance. */
export function installInputRules (ajv: Ajv): Ajv {
  ajv.addFormat('uuid', { type: 'string', validate: isUuid })
  ajv.addFormat('date-time', { type: 'string', validate: dateTimeFormat })
  ajv.addKeyword({
    keyword: LOWER_CASE,
    type: 'string',
    schemaType: 'boolean',
    modifying: true,
    errors: false,
    validate: ((enabled: boolean, data: string, _schema, context) => {
      if (enabled && context?.parentData !== undefined) {
        ;(context.parentData as Record<string | number, unknown>)[context.parentDataProperty] = data.toLowerCase()
      }
      return true
    }) satisfies SchemaValidateFunction,
  })
  ajv.addKeyword({ keyword: NO_NUL, type: 'string', schemaType: 'boolean', errors: true, validate: refuseNul })
  return ajv
}

const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'] as const
const SUBSCHEMAS = ['items', 'additionalProperties', 'additionalItems', 'unevaluatedProperties', 'unevaluatedItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else'] as const
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const

function isSchemaObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function acceptsStrings (schema: Record<string, unknown>): boolean {
  return schema.type === 'string' || (Array.isArray(schema.type) && schema.type.includes('string'))
}

/**
 * A copy of a request schema in which every string refuses U+0000 unless it
 * opts out, and every `format: 'uuid'` string is lower-cased (whether or not
 * it was written with `Uuid`). Applied by the validator compiler to every
 * route, so that the next route's fields have both rules without anyone
 * remembering them, and by the OpenAPI transform, so that the document
 * shows them.
 */
export function withInputRules<T> (schema: T): T {
  if (Array.isArray(schema)) return schema.map((item) => withInputRules(item)) as T
  if (!isSchemaObject(schema)) return schema
  const copy: Record<string, unknown> = { ...schema }
  for (const key of SUBSCHEMA_MAPS) {
    const map = copy[key]
    if (isSchemaObject(map)) copy[key] = Object.fromEntries(Object.entries(map).map(([name, sub]) => [name, withInputRules(sub)]))
  }
  for (const key of SUBSCHEMAS) if (isSchemaObject(copy[key]) || Array.isArray(copy[key])) copy[key] = withInputRules(copy[key])
  for (const key of SUBSCHEMA_LISTS) if (Array.isArray(copy[key])) copy[key] = withInputRules(copy[key])
  // An enum or const already names every value it takes.
  if (acceptsStrings(copy) && copy[NO_NUL] === undefined && copy.enum === undefined && copy.const === undefined) copy[NO_NUL] = true
  if (copy.format === 'uuid' && copy[LOWER_CASE] === undefined) copy[LOWER_CASE] = true
  return copy as T
}
