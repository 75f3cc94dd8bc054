import Type, { type Static, type TSchema, type TUnsafe } from 'typebox'

/** The `cursor` query parameter of keyset-paginated lists (src/shared/pagination.ts). */
export const Cursor = Type.String({ minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_-]+$', description: 'nextCursor of the previous page (base64url)' })

/** A page size: at most 100 items, `defaultValue` when the request names none. */
export const PageLimit = (defaultValue: number) => Type.Integer({ minimum: 1, maximum: 100, default: defaultValue })

/** A page of a list: its items and the cursor of the next page (null on the last). */
export const page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) })

/** A page of `T` items, as `page` describes it. */
export type Page<T> = Static<ReturnType<typeof page<TUnsafe<T>>>>
