import type { Kysely } from 'kysely'
import { engineOf } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  // Every instance reads the sessions revoked in the last seconds twice a second (the revocation
  // list follows the database): a range scan on this index, never a scan of every session.
  await db.schema.createIndex('sessions_revoked_at_idx').on('sessions').column('revoked_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  // MySQL names the table of an index it drops; the others do not accept it.
  const engine = engineOf(db)
  await db.schema
    .dropIndex('sessions_revoked_at_idx')
    .$call((builder) => (engine === 'mysql' ? builder.on('sessions') : builder))
    .execute()
}
