import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // A session is one login on one device: the family of every refresh token rotated from it.
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'varchar(36)', (col) => col.primaryKey())
    // Kept (with user_id null) when the user is deleted: a revoked session must stay known as
    // revoked until its access tokens have expired, also across restarts.
    .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('set null'))
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('last_used_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('user_agent', 'varchar(512)')
    .addColumn('ip', 'varchar(45)')
    .addColumn('revoked_at', types.timestamp)
    .addColumn('revoked_reason', 'varchar(32)')
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('sessions_user_id_idx')
    .on('sessions')
    .columns(['user_id', 'revoked_at'])
    .execute()

  // Refresh tokens are stored only as SHA-256 hashes. A used one stays, so that presenting it
  // again is recognised as reuse (a stolen token) and ends the whole session.
  await db.schema
    .createTable('refresh_tokens')
    .addColumn('token_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('session_id', 'varchar(36)', (col) =>
      col.notNull().references('sessions.id').onDelete('cascade'),
    )
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('used_at', types.timestamp)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('refresh_tokens_session_id_idx')
    .on('refresh_tokens')
    .column('session_id')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('refresh_tokens').execute()
  await db.schema.dropTable('sessions').execute()
}
