import type { Kysely } from 'kysely'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  // Every instance reads the sessions revoked in the last seconds twice a second (the revocation
  // list follows the database): a range scan on this index, never a scan of every session.
  await db.schema.createIndex('sessions_revoked_at_idx').on('sessions').column('revoked_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_revoked_at_idx').on('sessions').execute()
}
