import { readFile } from 'node:fs/promises'
import type { DMMF } from '@prisma/generator-helper'
import type pg from 'pg'

/**
 * Compares a migrated Postgres database with the data model of schema.prisma.
 *
 * Prisma's own drift check (`prisma migrate diff`) needs its schema engine,
 * which cannot be installed on these machines, and our migrations are written
 * by hand. So this reads the DMMF datamodel that `prisma generate` writes to
 * src/generated/datamodel.json (prisma/datamodel-generator.mjs) and the
 * database's catalog, and lists every difference a reviewer would care about:
 * tables, columns (type, nullability, default), primary keys, unique and
 * plain indexes, foreign keys and enums, in both directions.
 *
 * Scope: one database schema (default `public`); the Postgres connector's
 * scalar and native types. Anything it cannot map is reported as a
 * difference rather than silently passed.
 */

export const DATAMODEL_PATH = new URL('../../src/generated/datamodel.json', import.meta.url)

export async function loadDatamodel (path: URL | string = DATAMODEL_PATH): Promise<DMMF.Datamodel> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DMMF.Datamodel
  } catch (error) {
    throw new Error(`cannot read the Prisma datamodel at ${String(path)}; run \`node scripts/prisma-generate.mjs\` first`, {
      cause: error,
    })
  }
}

export interface DriftOptions {
  /** The database schema the models live in. Default `public`. */
  schema?: string
  /** Tables that are not models. Default: Prisma's bookkeeping table. */
  ignoreTables?: string[]
}

/** Any pg client, pool client or pool. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>
}

/**
 * Returns the differences between the database and the datamodel as readable
 * lines, sorted; an empty list means no drift.
 */
export async function findSchemaDrift (db: Queryable, datamodel: DMMF.Datamodel, options: DriftOptions = {}): Promise<string[]> {
  const schema = options.schema ?? 'public'
  const ignored = new Set(options.ignoreTables ?? ['_prisma_migrations'])
  const actual = await readCatalog(db, schema)
  const expected = expectedSchema(datamodel)
  const out: string[] = [...expected.problems]

  // Tables and columns.
  const actualTables = new Set(actual.columns.map((c) => c.table).concat(actual.tables))
  // A missing table is one difference, not one per column, index and key.
  const missingTables = new Set<string>()
  for (const [table, columns] of expected.tables) {
    if (!actualTables.has(table)) {
      out.push(`table ${table}: missing from the database`)
      missingTables.add(table)
      continue
    }
    const dbColumns = new Map(actual.columns.filter((c) => c.table === table).map((c) => [c.column, c]))
    for (const col of columns) {
      const dbCol = dbColumns.get(col.column)
      const where = `column ${table}.${col.column}`
      if (!dbCol) {
        out.push(`${where}: missing from the database (field ${col.model}.${col.field})`)
        continue
      }
      dbColumns.delete(col.column)
      if (col.type !== undefined && dbCol.type !== col.type) {
        out.push(`${where}: type is ${dbCol.type} in the database, ${col.type} in schema.prisma`)
      }
      if (dbCol.not_null !== col.notNull) {
        out.push(
          `${where}: ${dbCol.not_null ? 'NOT NULL' : 'nullable'} in the database, ${col.notNull ? 'NOT NULL' : 'nullable'} in schema.prisma`
        )
      }
      const dbDefault = dbCol.default ?? undefined
      if (col.default === null && dbDefault !== undefined) {
        out.push(`${where}: has DEFAULT ${dbDefault} in the database, no database default in schema.prisma`)
      } else if (col.default && dbDefault === undefined) {
        out.push(`${where}: no DEFAULT in the database, schema.prisma has ${col.default.describe}`)
      } else if (col.default && dbDefault !== undefined && !col.default.matches(dbDefault)) {
        out.push(`${where}: DEFAULT ${dbDefault} in the database, schema.prisma has ${col.default.describe}`)
      }
    }
    for (const extra of dbColumns.keys()) out.push(`column ${table}.${extra}: in the database but not in schema.prisma`)
  }
  for (const table of actualTables) {
    if (!expected.tables.has(table) && !ignored.has(table)) out.push(`table ${table}: in the database but not in schema.prisma`)
  }

  // Indexes, primary keys included: matched by table, kind and columns, then named.
  const indexKey = (i: { table: string; kind: IndexKind; columns: string[] }) => `${i.table}|${i.kind}|${i.columns.join(',')}`
  const actualIndexes = new Map<string, DbIndex>()
  for (const index of actual.indexes) {
    if (ignored.has(index.table)) continue
    if (index.partial || index.columns.includes('<expression>')) {
      out.push(`index ${index.name} on ${index.table}: partial or expression index, which schema.prisma cannot describe`)
      continue
    }
    actualIndexes.set(indexKey(index), index)
  }
  for (const index of expected.indexes) {
    if (missingTables.has(index.table)) continue
    const found = actualIndexes.get(indexKey(index))
    const what = `${KIND_LABEL[index.kind]} on ${index.table}(${index.columns.join(', ')})`
    if (!found) {
      out.push(`${what}: missing from the database`)
      continue
    }
    actualIndexes.delete(indexKey(index))
    if (index.name !== undefined && found.name !== index.name) {
      out.push(`${what}: named ${found.name} in the database, ${index.name} in schema.prisma`)
    }
  }
  for (const index of actualIndexes.values()) {
    out.push(`${KIND_LABEL[index.kind]} ${index.name} on ${index.table}(${index.columns.join(', ')}): in the database but not in schema.prisma`)
  }

  // Foreign keys: matched by table and columns.
  const fkKey = (fk: { table: string; columns: string[] }) => `${fk.table}|${fk.columns.join(',')}`
  const actualFks = new Map<string, DbForeignKey>()
  for (const fk of actual.foreignKeys) if (!ignored.has(fk.table)) actualFks.set(fkKey(fk), fk)
  for (const fk of expected.foreignKeys) {
    if (missingTables.has(fk.table) || missingTables.has(fk.refTable)) continue
    const found = actualFks.get(fkKey(fk))
    const what = `foreign key ${fk.table}(${fk.columns.join(', ')})`
    if (!found) {
      out.push(`${what} → ${fk.refTable}(${fk.refColumns.join(', ')}): missing from the database (relation ${fk.model}.${fk.field})`)
      continue
    }
    actualFks.delete(fkKey(fk))
    const dbTarget = `${found.ref_table}(${found.ref_columns.join(', ')})`
    const target = `${fk.refTable}(${fk.refColumns.join(', ')})`
    if (dbTarget !== target) out.push(`${what}: references ${dbTarget} in the database, ${target} in schema.prisma`)
    const onDelete = REFERENTIAL_ACTIONS[found.on_delete] ?? found.on_delete
    if (onDelete !== fk.onDelete) out.push(`${what}: ON DELETE ${onDelete} in the database, ${fk.onDelete} in schema.prisma`)
    const onUpdate = REFERENTIAL_ACTIONS[found.on_update] ?? found.on_update
    if (onUpdate !== fk.onUpdate) out.push(`${what}: ON UPDATE ${onUpdate} in the database, ${fk.onUpdate} in schema.prisma`)
  }
  for (const fk of actualFks.values()) {
    out.push(
      `foreign key ${fk.name} on ${fk.table}(${fk.columns.join(', ')}) → ${fk.ref_table}(${fk.ref_columns.join(', ')}): in the database but not in schema.prisma`
    )
  }

  // Enums: compared as sets, because Prisma's diff ignores the order of values.
  const actualEnums = new Map(actual.enums.map((e) => [e.name, e.values]))
  for (const [name, values] of expected.enums) {
    const dbValues = actualEnums.get(name)
    if (!dbValues) {
      out.push(`enum ${name}: missing from the database`)
      continue
    }
    actualEnums.delete(name)
    const missing = values.filter((v) => !dbValues.includes(v))
    const extra = dbValues.filter((v) => !values.includes(v))
    if (missing.length > 0) out.push(`enum ${name}: values missing from the database: ${missing.join(', ')}`)
    if (extra.length > 0) out.push(`enum ${name}: values in the database but not in schema.prisma: ${extra.join(', ')}`)
  }
  for (const name of actualEnums.keys()) out.push(`enum ${name}: in the database but not in schema.prisma`)

  return out.sort()
}

// ---------------------------------------------------------------------------
// What schema.prisma implies

type IndexKind = 'primary' | 'unique' | 'index'
const KIND_LABEL: Record<IndexKind, string> = { primary: 'primary key', unique: 'unique index', index: 'index' }

interface DefaultExpectation {
  describe: string
  matches(dbExpression: string): boolean
}

interface ExpectedColumn {
  model: string
  field: string
  column: string
  /** As Postgres' format_type() prints it (enums: the type's name); undefined when unmappable (reported). */
  type: string | undefined
  notNull: boolean
  /** null: no database default; undefined: a default whose value this checker does not compare. */
  default: DefaultExpectation | null
}

interface ExpectedIndex {
  table: string
  kind: IndexKind
  columns: string[]
  /** undefined when Prisma's name would exceed Postgres' 63 bytes and be truncated by rules not reproduced here. */
  name: string | undefined
}

interface ExpectedForeignKey {
  model: string
  field: string
  table: string
  columns: string[]
  refTable: string
  refColumns: string[]
  onDelete: string
  onUpdate: string
}

/** Prisma's scalar types with no @db attribute, on Postgres. */
const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Boolean: 'boolean',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
}

/** Prisma's @db.* native types on Postgres → format_type() spelling. */
function nativeType (name: string, args: readonly string[]): string | undefined {
  const p = args.length > 0 ? `(${args.join(',')})` : ''
  switch (name) {
    case 'Text':
      return 'text'
    case 'Char':
      return `character${p || '(1)'}`
    case 'VarChar':
      return `character varying${p}`
    case 'Bit':
      return `bit${p || '(1)'}`
    case 'VarBit':
      return `bit varying${p}`
    case 'Uuid':
    case 'Xml':
    case 'Inet':
    case 'Citext':
    case 'Money':
    case 'Date':
    case 'Oid':
    case 'Real':
    case 'Json':
    case 'Boolean':
      return name.toLowerCase()
    case 'Integer':
      return 'integer'
    case 'SmallInt':
      return 'smallint'
    case 'BigInt':
      return 'bigint'
    case 'DoublePrecision':
      return 'double precision'
    case 'Decimal':
      return `numeric${p}`
    case 'JsonB':
      return 'jsonb'
    case 'ByteA':
      return 'bytea'
    case 'Timestamp':
      return `timestamp${p} without time zone`
    case 'Timestamptz':
      return `timestamp${p} with time zone`
    case 'Time':
      return `time${p} without time zone`
    case 'Timetz':
      return `time${p} with time zone`
    default:
      return undefined
  }
}

/** Defaults that Prisma Client computes itself: no database default exists. */
const CLIENT_SIDE_DEFAULTS = new Set(['uuid', 'cuid', 'nanoid', 'ulid'])

const REFERENTIAL_ACTIONS: Record<string, string> = {
  a: 'NoAction',
  r: 'Restrict',
  c: 'Cascade',
  n: 'SetNull',
  d: 'SetDefault',
}

function expectedSchema (datamodel: DMMF.Datamodel) {
  const problems: string[] = []
  const enums = new Map<string, string[]>()
  const enumsByModelName = new Map<string, DMMF.DatamodelEnum>()
  for (const e of datamodel.enums) {
    enumsByModelName.set(e.name, e)
    enums.set(e.dbName ?? e.name, e.values.map((v) => v.dbName ?? v.name))
  }
  const models = new Map(datamodel.models.map((m) => [m.name, m]))
  const tableOf = (model: DMMF.Model) => model.dbName ?? model.name
  const columnOf = (model: DMMF.Model, fieldName: string) => {
    const field = model.fields.find((f) => f.name === fieldName)
    if (!field) problems.push(`schema.prisma: ${model.name} has no field ${fieldName}`)
    return field?.dbName ?? fieldName
  }

  const tables = new Map<string, ExpectedColumn[]>()
  const indexes = new Map<string, ExpectedIndex>()
  const addIndex = (model: DMMF.Model, kind: IndexKind, fields: readonly string[], dbName?: string | null) => {
    const table = tableOf(model)
    const columns = fields.map((f) => columnOf(model, f))
    const suffix = { primary: 'pkey', unique: 'key', index: 'idx' }[kind]
    // Prisma's default names: <table>_pkey, <table>_<columns>_key, <table>_<columns>_idx.
    const defaultName = kind === 'primary' ? `${table}_${suffix}` : `${table}_${columns.join('_')}_${suffix}`
    const name = dbName ?? (Buffer.byteLength(defaultName) <= 63 ? defaultName : undefined)
    indexes.set(`${table}|${kind}|${columns.join(',')}`, { table, kind, columns, name })
  }
  const foreignKeys: ExpectedForeignKey[] = []

  for (const model of datamodel.models) {
    const table = tableOf(model)
    const columns: ExpectedColumn[] = []
    for (const field of model.fields) {
      if (field.kind === 'object') {
        const from = field.relationFromFields ?? []
        if (from.length === 0) continue // the side of the relation without the foreign key
        const target = models.get(field.type)
        if (!target) {
          problems.push(`schema.prisma: ${model.name}.${field.name} relates to unknown model ${field.type}`)
          continue
        }
        const fromFields = from.map((f) => model.fields.find((x) => x.name === f))
        foreignKeys.push({
          model: model.name,
          field: field.name,
          table,
          columns: from.map((f) => columnOf(model, f)),
          refTable: tableOf(target),
          refColumns: (field.relationToFields ?? []).map((f) => columnOf(target, f)),
          // Prisma's defaults: Restrict when the relation is required, SetNull
          // when optional; Cascade on update.
          onDelete: field.relationOnDelete ?? (fromFields.every((f) => f?.isRequired) ? 'Restrict' : 'SetNull'),
          onUpdate: field.relationOnUpdate ?? 'Cascade',
        })
        continue
      }
      const column = field.dbName ?? field.name
      let type: string | undefined
      if (field.kind === 'enum') {
        const e = enumsByModelName.get(field.type)
        type = e ? (e.dbName ?? e.name) : undefined
        if (!e) problems.push(`schema.prisma: ${model.name}.${field.name} has unknown enum ${field.type}`)
      } else if (field.kind === 'scalar') {
        type = field.nativeType ? nativeType(field.nativeType[0], field.nativeType[1]) : SCALAR_TYPES[field.type]
        if (type === undefined) {
          const spelled = field.nativeType ? `@db.${field.nativeType[0]}(${field.nativeType[1].join(',')})` : field.type
          problems.push(`column ${table}.${column}: the drift checker cannot map ${spelled} to a Postgres type; extend test/helpers/schema-drift.ts`)
        }
      }
      if (type !== undefined && field.isList) type += '[]'
      columns.push({
        model: model.name,
        field: field.name,
        column,
        type,
        // Prisma's migrations leave list columns nullable whatever the schema says.
        notNull: field.isRequired && !field.isList,
        default: expectedDefault(field, enumsByModelName.get(field.type)),
      })
      if (field.isId) addIndex(model, 'primary', [field.name])
      if (field.isUnique) addIndex(model, 'unique', [field.name])
    }
    tables.set(table, columns)
    if (model.primaryKey) addIndex(model, 'primary', model.primaryKey.fields)
    for (const fields of model.uniqueFields) addIndex(model, 'unique', fields)
  }
  // The DMMF's index list carries explicit names (`map:`); it repeats the
  // field-level ones above, and is the only source of plain @@index.
  for (const index of datamodel.indexes ?? []) {
    const model = models.get(index.model)
    if (!model) continue
    if (index.type === 'fulltext') {
      problems.push(`schema.prisma: @@fulltext on ${index.model} is not supported by Postgres`)
      continue
    }
    const kind: IndexKind = index.type === 'id' ? 'primary' : index.type === 'unique' ? 'unique' : 'index'
    if (index.fields.some((f) => f.sortOrder === 'desc')) {
      problems.push(`schema.prisma: descending index on ${index.model} is not compared by the drift checker; extend it`)
    }
    addIndex(model, kind, index.fields.map((f) => f.name), index.dbName)
  }
  return { tables, indexes: [...indexes.values()], foreignKeys, enums, problems }
}

function expectedDefault (field: DMMF.Field, enumType: DMMF.DatamodelEnum | undefined): DefaultExpectation | null {
  if (!field.hasDefaultValue || field.default === undefined) return null
  const value = field.default
  const presence = (describe: string): DefaultExpectation => ({ describe, matches: () => true })
  if (Array.isArray(value)) return presence(`a list default ${JSON.stringify(value)}`)
  if (typeof value === 'object' && value !== null && 'name' in value) {
    const fn = value as DMMF.FieldDefault
    if (CLIENT_SIDE_DEFAULTS.has(fn.name)) return null
    switch (fn.name) {
      case 'now':
        return { describe: '@default(now())', matches: (e) => /^(CURRENT_TIMESTAMP|now\(\))$/i.test(e) }
      case 'autoincrement':
        return { describe: '@default(autoincrement())', matches: (e) => /^nextval\(/i.test(e) }
      case 'dbgenerated': {
        const sql = fn.args[0]
        if (sql === undefined) return presence('@default(dbgenerated())')
        return { describe: `@default(dbgenerated("${sql}"))`, matches: (e) => squash(e) === squash(String(sql)) }
      }
      default:
        return presence(`@default(${fn.name}(${fn.args.join(', ')}))`)
    }
  }
  if (field.type === 'DateTime') return presence(`@default(${JSON.stringify(value)})`)
  let literal = String(value)
  if (enumType) literal = enumType.values.find((v) => v.name === literal)?.dbName ?? literal
  return { describe: `@default(${JSON.stringify(value)})`, matches: (e) => stripLiteral(e) === literal }
}

/** Whitespace- and case-insensitive form of an SQL expression. */
function squash (sql: string): string {
  return sql.replace(/\s+/g, '').toLowerCase()
}

/** `'{}'::jsonb` → `{}`, `'user'::role` → `user`, `false` → `false`. */
function stripLiteral (expression: string): string {
  let e = expression.trim()
  for (;;) {
    const cast = e.match(/^(.*)::[\w\s".[\]()]+$/s)
    if (!cast?.[1]) break
    e = cast[1].trim()
  }
  if (e.startsWith('(') && e.endsWith(')')) e = e.slice(1, -1).trim()
  if (e.startsWith("'") && e.endsWith("'")) e = e.slice(1, -1).replaceAll("''", "'")
  return e
}

// ---------------------------------------------------------------------------
// What the database has

interface DbColumn {
  table: string
  column: string
  type: string
  not_null: boolean
  default: string | null
}

interface DbIndex {
  table: string
  name: string
  kind: IndexKind
  columns: string[]
  partial: boolean
}

interface DbForeignKey {
  table: string
  name: string
  columns: string[]
  ref_table: string
  ref_columns: string[]
  on_delete: string
  on_update: string
}

async function readCatalog (db: Queryable, schema: string) {
  const tables = await db.query<{ table: string }>(
    `SELECT c.relname::text AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
    [schema]
  )
  // Enum columns are named by their type, which is what the DMMF knows;
  // every other type as format_type() prints it, precision included.
  const columns = await db.query<DbColumn>(
    `SELECT c.relname::text AS table, a.attname::text AS column,
            CASE WHEN t.typtype = 'e' THEN t.typname::text
                 WHEN et.typtype = 'e' THEN et.typname::text || '[]'
                 ELSE format_type(a.atttypid, a.atttypmod) END AS type,
            a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default
     FROM pg_attribute a
     JOIN pg_class c ON c.oid = a.attrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_type t ON t.oid = a.atttypid
     LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY c.relname, a.attnum`,
    [schema]
  )
  const indexes = await db.query<DbIndex>(
    `SELECT t.relname::text AS table, i.relname::text AS name,
            CASE WHEN x.indisprimary THEN 'primary' WHEN x.indisunique THEN 'unique' ELSE 'index' END AS kind,
            x.indpred IS NOT NULL AS partial,
            array(SELECT coalesce(a.attname::text, '<expression>')
                         || CASE WHEN x.indoption[k.i - 1] & 1 = 1 THEN ' DESC' ELSE '' END
                  FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i)
                  LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum > 0
                  WHERE k.i <= x.indnkeyatts
                  ORDER BY k.i) AS columns
     FROM pg_index x
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1 AND t.relkind IN ('r', 'p')`,
    [schema]
  )
  const foreignKeys = await db.query<DbForeignKey>(
    `SELECT c.relname::text AS table, con.conname::text AS name, r.relname::text AS ref_table,
            array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i) AS columns,
            array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i) AS ref_columns,
            con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update
     FROM pg_constraint con
     JOIN pg_class c ON c.oid = con.conrelid
     JOIN pg_class r ON r.oid = con.confrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE con.contype = 'f' AND n.nspname = $1`,
    [schema]
  )
  const enums = await db.query<{ name: string; values: string[] }>(
    `SELECT t.typname::text AS name,
            array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS values
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typtype = 'e' AND n.nspname = $1`,
    [schema]
  )
  return {
    tables: tables.rows.map((r) => r.table),
    columns: columns.rows,
    indexes: indexes.rows,
    foreignKeys: foreignKeys.rows,
    enums: enums.rows,
  }
}
