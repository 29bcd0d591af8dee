import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

/** The search form of a product, as src/repositories/products.ts writes it (copied: frozen). */
function searchText(row: { product_id: string; name: string; description: string }): string {
  return `${row.product_id}\n${row.name}\n${row.description}`.normalize('NFKC').toLowerCase()
}

const BACKFILL_BATCH = 1000

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // Optimistic concurrency: every change increments the version, which is the ETag.
  await db.schema
    .alterTable('products')
    .addColumn('version', 'integer', (col) => col.notNull().defaultTo(1))
    .execute()
  // One lower-cased, NFKC form of the searchable text, written by the application, so that `q`
  // matches the same rows on every engine (SQLite's lower() knows only ASCII).
  await db.schema
    .alterTable('products')
    .addColumn('search_text', 'varchar(6000)', (col) => col.notNull().defaultTo(''))
    .execute()
  let lastId = 0
  for (;;) {
    const rows: { id: number; product_id: string; name: string; description: string }[] = await db
      .selectFrom('products')
      .select(['id', 'product_id', 'name', 'description'])
      .where('id', '>', lastId)
      .orderBy('id')
      .limit(BACKFILL_BATCH)
      .execute()
    if (rows.length === 0) break
    for (const row of rows)
      await db
        .updateTable('products')
        .set({ search_text: searchText(row) })
        .where('id', '=', row.id)
        .execute()
    lastId = rows[rows.length - 1]!.id
  }

  // One index per sort order (id breaks ties), and one for the owner filter in the default order.
  await db.schema.createIndex('products_price_id_idx').on('products').columns(['price', 'id']).execute()
  await db.schema.createIndex('products_name_id_idx').on('products').columns(['name', 'id']).execute()
  await db.schema
    .createIndex('products_owner_created_idx')
    .on('products')
    .columns(['owner_id', 'created_at', 'id'])
    .execute()

  // Idempotency-Key: the first response to a key is kept for 24 h and replayed to retries.
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('idempotency_key', 'varchar(255)', (col) => col.notNull())
    .addColumn('request_hash', 'char(64)', (col) => col.notNull())
    .addColumn('response_status', 'integer')
    .addColumn('response_body', types.text)
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pkey', ['user_id', 'idempotency_key'])
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('idempotency_keys_expires_at_idx')
    .on('idempotency_keys')
    .column('expires_at')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('idempotency_keys').execute()
  // MySQL names the table of an index it drops; the others do not accept it.
  const engine = engineOf(db)
  for (const index of ['products_owner_created_idx', 'products_name_id_idx', 'products_price_id_idx'])
    await db.schema
      .dropIndex(index)
      .$call((builder) => (engine === 'mysql' ? builder.on('products') : builder))
      .execute()
  await db.schema.alterTable('products').dropColumn('search_text').execute()
  await db.schema.alterTable('products').dropColumn('version').execute()
}
