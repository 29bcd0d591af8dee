import { sql, type Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // At most one TOTP factor per user: pending from the start of an enrolment (confirmed_at null)
  // until a valid code confirms it. The secret is stored encrypted by the application
  // (src/auth/data-encryption.ts). last_used_step is the last time step whose code was accepted,
  // from the confirming code on: a code at or before it is refused, so no code works twice.
  // The check ties the two together: a pending factor has no step, an active one always has one,
  // so "last_used_step < step" alone accepts only on an active factor.
  await db.schema
    .createTable('totp_factors')
    .addColumn('user_id', 'integer', (col) => col.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('secret_encrypted', types.text, (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('confirmed_at', types.timestamp)
    // 64-bit: a step is the count of 30-second periods since 1970.
    .addColumn('last_used_step', 'bigint')
    .addCheckConstraint(
      'totp_factors_confirmation_check',
      sql`(confirmed_at is null and last_used_step is null) or (confirmed_at is not null and last_used_step is not null)`,
    )
    .modifyEnd(tableOptions(engine))
    .execute()

  // Single-use recovery codes, stored only as SHA-256 hashes of their normalised form. Nothing
  // refers to one code, and every query names the user and the hash: the pair is the key, and its
  // prefix serves the user's foreign key and "all of this user's codes". A used code stays (with
  // used_at) until the set is replaced.
  await db.schema
    .createTable('recovery_codes')
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('code_hash', 'char(64)', (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('used_at', types.timestamp)
    .addPrimaryKeyConstraint('recovery_codes_pkey', ['user_id', 'code_hash'])
    .modifyEnd(tableOptions(engine))
    .execute()

  // The proof that a login got past its password and still owes a second factor: an opaque token
  // handed to the client once and stored only as a SHA-256 hash, single-use and short-lived.
  // client_hash binds it to the client that logged in; credential_stamp changes with the
  // password, so a token issued before a password change stops working. Both are the
  // application's digests (varchar, not char: a shorter value is never padded).
  await db.schema
    .createTable('mfa_tokens')
    .addColumn('token_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_hash', 'varchar(128)', (col) => col.notNull())
    .addColumn('credential_stamp', 'varchar(128)', (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('used_at', types.timestamp)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema.createIndex('mfa_tokens_user_id_idx').on('mfa_tokens').column('user_id').execute()
  await db.schema.createIndex('mfa_tokens_expires_at_idx').on('mfa_tokens').column('expires_at').execute()

  // How the session's login was authenticated: RFC 8176 method names separated by spaces
  // ("pwd", "pwd otp mfa"), kept for the access tokens of every refresh. Sessions from before
  // second factors were password logins.
  await db.schema
    .alterTable('sessions')
    .addColumn('amr', 'varchar(64)', (col) => col.notNull().defaultTo('pwd'))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('amr').execute()
  await db.schema.dropTable('mfa_tokens').execute()
  await db.schema.dropTable('recovery_codes').execute()
  await db.schema.dropTable('totp_factors').execute()
}
