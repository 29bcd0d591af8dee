import type { Kysely } from 'kysely'
import type { Database, NewProductRow, ProductRow, ProductRowUpdate } from '../db/database.js'
import { insertReturningId, type Engine } from '../db/dialect.js'

const PRODUCT_COLUMNS = [
  'id',
  'product_id',
  'name',
  'description',
  'price',
  'owner_id',
  'created_at',
  'updated_at',
] as const

export type ProductRecord = Pick<ProductRow, (typeof PRODUCT_COLUMNS)[number]>

/** Position of the last row of a page in the default order (newest first, id breaking ties). */
export interface ProductKey {
  created_at: Date
  id: number
}

export function createProductsRepository(db: Kysely<Database>, engine: Engine) {
  return {
    findById(id: number): Promise<ProductRecord | undefined> {
      return db.selectFrom('products').select(PRODUCT_COLUMNS).where('id', '=', id).executeTakeFirst()
    },

    async existsWithSku(productId: string, exceptId?: number): Promise<boolean> {
      const row = await db
        .selectFrom('products')
        .select('id')
        .where('product_id', '=', productId)
        .$if(exceptId !== undefined, (qb) => qb.where('id', '!=', exceptId!))
        .executeTakeFirst()
      return row !== undefined
    },

    insert(row: NewProductRow): Promise<number> {
      return insertReturningId(engine, db.insertInto('products').values(row))
    },

    async update(id: number, changes: ProductRowUpdate): Promise<boolean> {
      const result = await db.updateTable('products').set(changes).where('id', '=', id).executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    async delete(id: number): Promise<boolean> {
      const result = await db.deleteFrom('products').where('id', '=', id).executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },

    /** Newest first; keyset on (created_at, id), so a page deep in the list costs what the first does. */
    list(after: ProductKey | undefined, limit: number): Promise<ProductRecord[]> {
      return db
        .selectFrom('products')
        .select(PRODUCT_COLUMNS)
        .$if(after !== undefined, (qb) =>
          qb.where((eb) =>
            eb.or([
              eb('created_at', '<', after!.created_at),
              eb.and([eb('created_at', '=', after!.created_at), eb('id', '<', after!.id)]),
            ]),
          ),
        )
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute()
    },
  }
}

export type ProductsRepository = ReturnType<typeof createProductsRepository>
