import { stat } from 'node:fs/promises'
import type { DMMF } from '@prisma/generator-helper'
import t from 'tap'
import { createTestDatabase, withClient } from '../helpers/database.js'
import { DATAMODEL_PATH, findSchemaDrift, loadDatamodel } from '../helpers/schema-drift.js'

// The migrations are SQL written by hand (Prisma's schema engine cannot run
// here), so this is what keeps them and schema.prisma in step: CI fails on
// any difference between the migrated database and the data model.

const SCHEMA_PATH = new URL('../../prisma/schema.prisma', import.meta.url)

const db = await createTestDatabase()
t.teardown(() => db.drop())
const datamodel = await loadDatamodel()

const bulleted = (lines: string[]) => lines.map((line) => `\n  - ${line}`).join('')

t.test('the datamodel was generated from the current schema.prisma', async (t) => {
  const [schema, generated] = await Promise.all([stat(SCHEMA_PATH), stat(DATAMODEL_PATH)])
  t.ok(
    generated.mtimeMs >= schema.mtimeMs,
    'src/generated/datamodel.json is older than prisma/schema.prisma: run `node scripts/prisma-generate.mjs` (npm test does)'
  )
})

t.test('the migrated database matches schema.prisma', async (t) => {
  const drift = await withClient(db.url, (client) => findSchemaDrift(client, datamodel))
  t.strictSame(
    drift,
    [],
    drift.length === 0
      ? 'no drift'
      : `the migrations and prisma/schema.prisma disagree; fix the migration SQL (or add one):${bulleted(drift)}`
  )
})

// Each change is applied inside a transaction that is rolled back, so one
// database serves every case; Postgres' DDL is transactional.
const databaseChanges: { name: string; sql: string; expected: string[] }[] = [
  {
    name: 'an extra column',
    sql: 'ALTER TABLE "users" ADD COLUMN "nickname" TEXT',
    expected: ['column users.nickname: in the database but not in schema.prisma'],
  },
  {
    name: 'a missing column',
    sql: 'ALTER TABLE "sessions" DROP COLUMN "revoked_reason"',
    expected: ['column sessions.revoked_reason: missing from the database (field Session.revokedReason)'],
  },
  {
    name: 'a dropped NOT NULL',
    sql: 'ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL',
    expected: ['column users.email: nullable in the database, NOT NULL in schema.prisma'],
  },
  {
    name: 'a NOT NULL list (Prisma leaves lists nullable)',
    sql: 'ALTER TABLE "api_keys" ALTER COLUMN "scopes" SET NOT NULL',
    expected: ['column api_keys.scopes: NOT NULL in the database, nullable in schema.prisma'],
  },
  {
    name: 'a different type',
    sql: 'ALTER TABLE "users" ALTER COLUMN "email" TYPE VARCHAR(255)',
    expected: ['column users.email: type is character varying(255) in the database, text in schema.prisma'],
  },
  {
    name: 'a different timestamp precision',
    sql: 'ALTER TABLE "users" ALTER COLUMN "created_at" TYPE TIMESTAMPTZ(6)',
    expected: [
      'column users.created_at: type is timestamp(6) with time zone in the database, timestamp(3) with time zone in schema.prisma',
    ],
  },
  {
    name: 'an enum column turned into text',
    sql: 'ALTER TABLE "users" ALTER COLUMN "role" DROP DEFAULT, ALTER COLUMN "role" TYPE TEXT, ALTER COLUMN "role" SET DEFAULT \'user\'',
    expected: ['column users.role: type is text in the database, role in schema.prisma'],
  },
  {
    name: 'a different default',
    sql: 'ALTER TABLE "users" ALTER COLUMN "role" SET DEFAULT \'admin\'',
    expected: ['column users.role: DEFAULT \'admin\'::role in the database, schema.prisma has @default("user")'],
  },
  {
    name: 'a missing default',
    sql: 'ALTER TABLE "users" ALTER COLUMN "id" DROP DEFAULT',
    expected: ['column users.id: no DEFAULT in the database, schema.prisma has @default(dbgenerated("gen_random_uuid()"))'],
  },
  {
    name: 'a missing unique index',
    sql: 'DROP INDEX "users_email_key"',
    expected: ['unique index on users(email): missing from the database'],
  },
  {
    name: 'a unique index that is not unique',
    sql: 'DROP INDEX "users_email_key"; CREATE INDEX "users_email_key" ON "users"("email")',
    expected: [
      'index users_email_key on users(email): in the database but not in schema.prisma',
      'unique index on users(email): missing from the database',
    ],
  },
  {
    name: 'a renamed index',
    sql: 'ALTER INDEX "users_email_key" RENAME TO "users_email_unique"',
    expected: ['unique index on users(email): named users_email_unique in the database, users_email_key in schema.prisma'],
  },
  {
    name: 'an extra index',
    sql: 'CREATE INDEX "users_disabled_idx" ON "users"("disabled")',
    expected: ['index users_disabled_idx on users(disabled): in the database but not in schema.prisma'],
  },
  {
    name: 'a missing primary key',
    sql: 'ALTER TABLE "audit_events" DROP CONSTRAINT "audit_events_pkey"',
    expected: ['primary key on audit_events(id): missing from the database'],
  },
  {
    name: 'a missing foreign key',
    sql: 'ALTER TABLE "api_keys" DROP CONSTRAINT "api_keys_user_id_fkey"',
    expected: ['foreign key api_keys(user_id) → users(id): missing from the database (relation ApiKey.user)'],
  },
  {
    name: 'a foreign key with other referential actions',
    sql: `ALTER TABLE "api_keys" DROP CONSTRAINT "api_keys_user_id_fkey";
          ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id")`,
    expected: [
      'foreign key api_keys(user_id): ON DELETE NoAction in the database, Cascade in schema.prisma',
      'foreign key api_keys(user_id): ON UPDATE NoAction in the database, Cascade in schema.prisma',
    ],
  },
  {
    name: 'an extra enum value',
    sql: 'ALTER TYPE "role" ADD VALUE \'owner\'',
    expected: ['enum role: values in the database but not in schema.prisma: owner'],
  },
  {
    name: 'an extra table',
    sql: 'CREATE TABLE "leftovers" ("id" INTEGER)',
    expected: ['table leftovers: in the database but not in schema.prisma'],
  },
  {
    name: 'a missing table',
    sql: 'DROP TABLE "signing_keys"',
    expected: ['table signing_keys: missing from the database'],
  },
]

t.test('the checker reports a database that differs from schema.prisma', async (t) => {
  await withClient(db.url, async (client) => {
    for (const change of databaseChanges) {
      await client.query('BEGIN')
      try {
        await client.query(change.sql)
        t.strictSame(await findSchemaDrift(client, datamodel), change.expected, change.name)
      } finally {
        await client.query('ROLLBACK')
      }
    }
    t.strictSame(await findSchemaDrift(client, datamodel), [], 'and nothing once the changes are rolled back')
  })
})

/** The datamodel with `edit` applied to one model. */
function editModel (name: string, edit: (model: DMMF.Model) => DMMF.Model): DMMF.Datamodel {
  if (!datamodel.models.some((m) => m.name === name)) throw new Error(`schema.prisma has no model ${name}`)
  return { ...datamodel, models: datamodel.models.map((m) => (m.name === name ? edit(m) : m)) }
}

function editField (model: string, field: string, edit: Partial<DMMF.Field>): DMMF.Datamodel {
  return editModel(model, (m) => ({ ...m, fields: m.fields.map((f) => (f.name === field ? { ...f, ...edit } : f)) }))
}

const optionalText: DMMF.Field = {
  name: 'nickname',
  kind: 'scalar',
  isList: false,
  isRequired: false,
  isUnique: false,
  isId: false,
  isReadOnly: false,
  hasDefaultValue: false,
  type: 'String',
  nativeType: null,
}

const schemaChanges: { name: string; datamodel: () => DMMF.Datamodel; expected: string[] }[] = [
  {
    name: 'a field with no migration',
    datamodel: () => editModel('User', (m) => ({ ...m, fields: [...m.fields, optionalText] })),
    expected: ['column users.nickname: missing from the database (field User.nickname)'],
  },
  {
    name: 'a field made optional',
    datamodel: () => editField('User', 'passwordHash', { isRequired: false }),
    expected: ['column users.password_hash: NOT NULL in the database, nullable in schema.prisma'],
  },
  {
    name: 'a field made unique',
    datamodel: () => editField('ApiKey', 'prefix', { isUnique: true }),
    expected: ['unique index on api_keys(prefix): missing from the database'],
  },
  {
    name: 'a compound unique',
    datamodel: () => editModel('ApiKey', (m) => ({ ...m, uniqueFields: [['userId', 'name']] })),
    expected: ['unique index on api_keys(user_id, name): missing from the database'],
  },
  {
    name: 'a different native type',
    datamodel: () => editField('User', 'email', { nativeType: ['VarChar', ['320']] }),
    expected: ['column users.email: type is text in the database, character varying(320) in schema.prisma'],
  },
  {
    name: 'a native type the checker does not know',
    datamodel: () => editField('User', 'email', { nativeType: ['Geometry', []] }),
    expected: [
      'column users.email: the drift checker cannot map @db.Geometry() to a Postgres type; extend test/helpers/schema-drift.ts',
    ],
  },
  {
    name: 'a different onDelete',
    datamodel: () => editField('ApiKey', 'user', { relationOnDelete: 'Restrict' }),
    expected: ['foreign key api_keys(user_id): ON DELETE Cascade in the database, Restrict in schema.prisma'],
  },
  {
    name: 'a new enum value',
    datamodel: () => ({
      ...datamodel,
      enums: datamodel.enums.map((e) => (e.name === 'Role' ? { ...e, values: [...e.values, { name: 'owner', dbName: null }] } : e)),
    }),
    expected: ['enum role: values missing from the database: owner'],
  },
]

t.test('the checker reports a schema.prisma change that no migration made', async (t) => {
  await withClient(db.url, async (client) => {
    for (const change of schemaChanges) {
      t.strictSame(await findSchemaDrift(client, change.datamodel()), change.expected, change.name)
    }
  })
})
