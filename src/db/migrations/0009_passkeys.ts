import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // An account's passkeys (WebAuthn credentials). credential_id is the authenticator's id of the
  // credential (base64url, up to 1,023 bytes, so up to 1,364 characters): too long for a unique
  // index on every engine, so its SHA-256 (credential_hash) is the unique key a login looks it up
  // by. user_handle is the opaque WebAuthn user id the authenticator keeps with the credential (one
  // per account, random, never the numeric id); a password-less login checks that the assertion's
  // handle is the one of the credential's owner. public_key is the COSE key (base64url), not a
  // secret. sign_count is the authenticator's signature counter: an assertion that does not
  // advance it (when it counts at all) is refused as a possible clone.
  await db.schema
    .createTable('passkeys')
    .addColumn('id', types.id, types.primaryKey)
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('credential_hash', 'char(64)', (col) => col.notNull().unique())
    .addColumn('credential_id', types.text, (col) => col.notNull())
    .addColumn('user_handle', 'varchar(128)', (col) => col.notNull())
    .addColumn('public_key', types.text, (col) => col.notNull())
    .addColumn('sign_count', 'bigint', (col) => col.notNull())
    // Comma-separated hints (usb, nfc, ble, internal, hybrid…) handed back to the browser.
    .addColumn('transports', 'varchar(255)', (col) => col.notNull())
    .addColumn('name', 'varchar(100)', (col) => col.notNull())
    .addColumn('device_type', 'varchar(16)', (col) => col.notNull())
    .addColumn('backed_up', 'boolean', (col) => col.notNull())
    .addColumn('aaguid', 'varchar(36)', (col) => col.notNull())
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('last_used_at', types.timestamp)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema.createIndex('passkeys_user_id_idx').on('passkeys').column('user_id').execute()

  // WebAuthn challenges, kept by the server (not by the client) so that any instance can check an
  // answer and every challenge works once: a registration's (user_id set), a password-less login's
  // (no user yet) and a second factor's (user_id set). Stored only as SHA-256 hashes; spent by
  // deleting the row, one statement, so of two answers to one challenge exactly one finds it.
  // user_handle is the WebAuthn user id a registration's options carried: the browser's answer
  // does not repeat it, and the new passkey must be stored with the handle its authenticator keeps.
  await db.schema
    .createTable('webauthn_challenges')
    .addColumn('challenge_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('purpose', 'varchar(32)', (col) => col.notNull())
    .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
    .addColumn('user_handle', 'varchar(128)')
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('webauthn_challenges_expires_at_idx')
    .on('webauthn_challenges')
    .column('expires_at')
    .execute()
  await db.schema
    .createIndex('webauthn_challenges_user_id_idx')
    .on('webauthn_challenges')
    .column('user_id')
    .execute()

  // When the session's user last proved a second factor (at a login that asked for one, or by
  // re-authenticating since): a sensitive change accepts that instead of the password for a few
  // minutes. Null for a password-only login and for sessions from before this migration.
  await db.schema.alterTable('sessions').addColumn('factor_verified_at', types.timestamp).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('factor_verified_at').execute()
  await db.schema.dropTable('webauthn_challenges').execute()
  await db.schema.dropTable('passkeys').execute()
}
