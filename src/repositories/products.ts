import { sql, type Kysely } from 'kysely'
import type { Database, NewProductRow, ProductRow, ProductRowUpdate } from '../db/database.js'
import { insertReturningId } from '../db/portable.js'
import type { Engine } from '../db/target.js'
import { compiledOnce } from './compiled-once.js'

const PRODUCT_COLUMNS = [
  'id',
  'product_id',
  'name',
  'description',
  'price',
  'owner_id',
  'version',
  'created_at',
  'updated_at',
] as const

export type ProductRecord = Pick<ProductRow, (typeof PRODUCT_COLUMNS)[number]>

export type ProductSortColumn = 'created_at' | 'price' | 'name'

export interface ProductSort {
  column: ProductSortColumn
  direction: 'asc' | 'desc'
}

/** Where the previous page ended: the sort column's value and the id of its last row. */
export interface ProductPosition {
  value: Date | number | string
  id: number
}

export interface ProductFilters {
  /** Lower-cased, NFKC text to find in the SKU, name or description. */
  text?: string
  minPrice?: number
  maxPrice?: number
  ownerId?: number
}

/** The form `q` is matched against: one per product, the same on every engine. */
export function productSearchText(product: {
  product_id: string
  name: string
  description: string
}): string {
  return `${product.product_id}\n${product.name}\n${product.description}`.normalize('NFKC').toLowerCase()
}

/** A LIKE pattern that finds `text` anywhere, with LIKE's own wildcards taken literally ("!" escapes). */
function containsPattern(text: string): string {
  return `%${text.replace(/[!%_]/g, (char) => `!${char}`)}%`
}

/** The one-row read behind every GET /product/{id} and every change's answer. */
const findById = compiledOnce((db) => db.selectFrom('products').select(PRODUCT_COLUMNS).where('id', '=', 0))

export function createProductsRepository(db: Kysely<Database>, engine: Engine) {
  return {
    async findById(id: number): Promise<ProductRecord | undefined> {
      return (await findById(db, engine, [id]))[0]
    },

    /**
     * The product, locked until the end of the transaction, for a change that depends on what it
     * reads (the version an If-Match names, the fields search_text is made of): a concurrent change
     * waits here and then reads the committed row. SQLite runs one transaction at a time anyway.
     */
    findByIdForUpdate(id: number): Promise<ProductRecord | undefined> {
      return db
        .selectFrom('products')
        .select(PRODUCT_COLUMNS)
        .where('id', '=', id)
        .$if(engine !== 'sqlite', (qb) => qb.forUpdate())
        .executeTakeFirst()
    },

    /**
     * Inserts a product and answers the row as stored. One statement on PostgreSQL and SQLite
     * (`INSERT … RETURNING`); MySQL has no RETURNING, so there the insert and the read of its row
     * run in one transaction (the caller's, or one of their own), and no change can come between.
     */
    async insert(row: Omit<NewProductRow, 'search_text' | 'version'>): Promise<ProductRecord> {
      const values = { ...row, version: 1, search_text: productSearchText(row) }
      if (engine !== 'mysql')
        return db.insertInto('products').values(values).returning(PRODUCT_COLUMNS).executeTakeFirstOrThrow()
      const insertAndRead = async (trx: Kysely<Database>) => {
        const id = await insertReturningId(engine, trx.insertInto('products').values(values))
        return (await createProductsRepository(trx, engine).findById(id))!
      }
      return db.isTransaction ? insertAndRead(db) : db.transaction().execute(insertAndRead)
    },

    /**
     * Applies changes and increments the version. With `expectedVersion`, only if the row still
     * has it (optimistic concurrency): false when it does not, or when the row is gone.
     */
    async update(
      id: number,
      changes: Omit<ProductRowUpdate, 'search_text' | 'version'>,
      current: Pick<ProductRecord, 'product_id' | 'name' | 'description'>,
      expectedVersion?: number,
    ): Promise<boolean> {
      const result = await db
        .updateTable('products')
        .set({
          ...changes,
          search_text: productSearchText({ ...current, ...changes } as typeof current),
          version: sql<number>`version + 1`,
        })
        .where('id', '=', id)
        .$if(expectedVersion !== undefined, (qb) => qb.where('version', '=', expectedVersion!))
        .executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    async delete(id: number, expectedVersion?: number): Promise<boolean> {
      const result = await db
        .deleteFrom('products')
        .where('id', '=', id)
        .$if(expectedVersion !== undefined, (qb) => qb.where('version', '=', expectedVersion!))
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },

    /** One page in the given order, after a position (keyset pagination: see selectPage). */
    list: (options: ProductListOptions) => selectPage(db, options),
  }
}

export type ProductsRepository = ReturnType<typeof createProductsRepository>

export interface ProductListOptions {
  sort: ProductSort
  filters: ProductFilters
  after?: ProductPosition
  limit: number
}

/**
 * One page in the given order, after `after`. Keyset pagination: the sort column's index is
 * entered at the previous page's last row, so a page a million rows deep costs what the first
 * does. Written as `col <= v AND (col < v OR id < i)` so that every engine uses a range scan.
 */
function selectPage(db: Kysely<Database>, options: ProductListOptions) {
  const { sort, filters, after, limit } = options
  const column = sort.column
  const descending = sort.direction === 'desc'
  return db
    .selectFrom('products')
    .select(PRODUCT_COLUMNS)
    .$if(filters.ownerId !== undefined, (qb) => qb.where('owner_id', '=', filters.ownerId!))
    .$if(filters.minPrice !== undefined, (qb) => qb.where('price', '>=', filters.minPrice!))
    .$if(filters.maxPrice !== undefined, (qb) => qb.where('price', '<=', filters.maxPrice!))
    .$if(filters.text !== undefined, (qb) =>
      qb.where(sql<boolean>`${sql.ref('search_text')} like ${containsPattern(filters.text!)} escape '!'`),
    )
    .$if(after !== undefined, (qb) =>
      qb
        .where(column, descending ? '<=' : '>=', after!.value as never)
        .where((eb) =>
          eb.or([
            eb(column, descending ? '<' : '>', after!.value as never),
            eb('id', descending ? '<' : '>', after!.id),
          ]),
        ),
    )
    .orderBy(column, sort.direction)
    .orderBy('id', sort.direction)
    .limit(limit)
    .execute()
}
