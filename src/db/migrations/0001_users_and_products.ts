import { sql, type Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema, whatever the code
// around it becomes. Later changes are new migrations.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  await db.schema
    .createTable('users')
    .addColumn('id', types.id, types.primaryKey)
    .addColumn('name', 'varchar(64)', (col) => col.notNull())
    .addColumn('name_key', 'varchar(64)', (col) => col.notNull())
    .addColumn('email', 'varchar(254)', (col) => col.notNull())
    .addColumn('password_hash', 'varchar(255)', (col) => col.notNull())
    .addColumn('role', 'varchar(16)', (col) => col.notNull().defaultTo('user'))
    .addColumn('is_active', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('email_verified', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('updated_at', types.timestamp, (col) => col.notNull())
    .addCheckConstraint('users_role_check', sql`role in ('user', 'admin')`)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema.createIndex('users_email_key').unique().on('users').column('email').execute()
  await db.schema.createIndex('users_name_key_key').unique().on('users').column('name_key').execute()
  await db.schema.createIndex('users_role_idx').on('users').column('role').execute()

  await db.schema
    .createTable('products')
    .addColumn('id', types.id, types.primaryKey)
    .addColumn('product_id', 'varchar(64)', (col) => col.notNull())
    .addColumn('name', 'varchar(200)', (col) => col.notNull())
    .addColumn('description', types.text, (col) => col.notNull())
    .addColumn('price', 'bigint', (col) => col.notNull())
    .addColumn('owner_id', 'integer', (col) => col.references('users.id').onDelete('set null'))
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('updated_at', types.timestamp, (col) => col.notNull())
    .addCheckConstraint('products_price_check', sql`price >= 0`)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('products_product_id_key')
    .unique()
    .on('products')
    .column('product_id')
    .execute()
  await db.schema.createIndex('products_owner_id_idx').on('products').column('owner_id').execute()
  await db.schema
    .createIndex('products_created_at_id_idx')
    .on('products')
    .columns(['created_at', 'id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('products').execute()
  await db.schema.dropTable('users').execute()
}
