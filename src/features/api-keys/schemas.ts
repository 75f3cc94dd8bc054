import Type, { type Static } from 'typebox'
import { dateTimeInput } from '../../shared/input-formats.js'
import { Cursor, PageLimit } from '../../shared/pagination-schemas.js'
import { DateTime } from '../accounts/schemas.js'

const Scope = Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,64}$' })

export const ApiKeyCreateRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: 20, uniqueItems: true }),
    expiresAt: Type.Optional(dateTimeInput('when the key stops working; none: never')),
  },
  { additionalProperties: false }
)

export const ApiKey = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    prefix: Type.String({ description: 'the first characters of the key, to tell keys apart' }),
    name: Type.String(),
    scopes: Type.Array(Type.String()),
    expiresAt: Type.Union([DateTime, Type.Null()]),
    createdAt: DateTime,
    lastUsedAt: Type.Union([DateTime, Type.Null()], { description: 'updated at most once a minute' }),
  },
  { $id: 'ApiKey', title: 'API key' }
)
/** An API key as its owner sees it: no secret. */
export type ApiKeySummary = Static<typeof ApiKey>

/** The answer to a key's creation: the one time the key itself is shown (never used yet, so no lastUsedAt). */
export const CreatedApiKey = Type.Interface([Type.Omit(ApiKey, ['lastUsedAt'])], {
  key: Type.String({ description: 'the secret key: shown this once' }),
})
export type CreatedApiKey = Static<typeof CreatedApiKey>

export const ApiKeysQuery = Type.Object(
  {
    // The default page holds the default limit of live keys, so a client that reads only `items` sees them all.
    limit: PageLimit(100),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false }
)
