import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // One row that /readyz rewrites: a database that still answers reads but cannot store a change
  // (a full disk, a read-only file or server) must not be called ready.
  await db.schema
    .createTable('readiness_probe')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('checked_at', types.timestamp, (col) => col.notNull())
    .modifyEnd(tableOptions(engine))
    .execute()
  await db
    .insertInto('readiness_probe')
    .values({ id: 1, checked_at: new Date('2000-01-01T00:00:00Z') })
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('readiness_probe').execute()
}
