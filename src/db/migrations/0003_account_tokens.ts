import { sql, type Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // Single-use tokens mailed to a user (password reset, email verification), stored only as
  // SHA-256 hashes. `email` is the address the link was sent to: a verification token proves that
  // address only, so it cannot verify an email the account has changed to since.
  await db.schema
    .createTable('account_tokens')
    .addColumn('token_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('purpose', 'varchar(32)', (col) => col.notNull())
    .addColumn('email', 'varchar(254)', (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('used_at', types.timestamp)
    .addCheckConstraint(
      'account_tokens_purpose_check',
      sql`purpose in ('password_reset', 'email_verification')`,
    )
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('account_tokens_user_id_idx')
    .on('account_tokens')
    .columns(['user_id', 'purpose'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('account_tokens').execute()
}
