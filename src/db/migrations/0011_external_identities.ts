import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // The accounts of OpenID Connect providers (OIDC_PROVIDERS) linked to our accounts: `provider` is
  // the configured id, `subject` the provider's `sub` claim (at most 255 ASCII characters, OIDC
  // Core 2), which never changes for one person at one provider, unlike the email. One account of a
  // provider belongs to one of ours, and one of ours has at most one account per provider. `email`
  // is what the provider said at the last sign-in, shown in the list of identities.
  await db.schema
    .createTable('external_identities')
    .addColumn('id', types.id, types.primaryKey)
    .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('provider', 'varchar(32)', (col) => col.notNull())
    .addColumn('subject', 'varchar(255)', (col) => col.notNull())
    .addColumn('email', 'varchar(320)')
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('last_used_at', types.timestamp)
    .addUniqueConstraint('external_identities_provider_subject_key', ['provider', 'subject'])
    .addUniqueConstraint('external_identities_user_provider_key', ['user_id', 'provider'])
    .modifyEnd(tableOptions(engine))
    .execute()

  // Sign-ins (and links) with a provider in flight. A row is made by GET /login/{provider} (or
  // POST /users/me/identities/{provider}), keyed by the SHA-256 of the `state` sent to the
  // provider, with the `nonce` and the PKCE verifier of that request (both spent by the callback,
  // which erases them), the client's own PKCE challenge and where to send the browser back.
  // The callback, once every check of the provider's answer passed, stores what the provider
  // vouched for (subject, email, email_verified, name) and the SHA-256 of a one-time code
  // (code_hash) that the client exchanges, with its PKCE verifier, for tokens or a link. used_at
  // marks that exchange: a code works once. user_id is the account a link was asked for.
  await db.schema
    .createTable('external_logins')
    .addColumn('state_hash', 'char(64)', (col) => col.primaryKey())
    .addColumn('provider', 'varchar(32)', (col) => col.notNull())
    .addColumn('purpose', 'varchar(16)', (col) => col.notNull())
    .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
    .addColumn('nonce', 'varchar(128)')
    .addColumn('code_verifier', 'varchar(128)')
    .addColumn('client_challenge', 'varchar(128)', (col) => col.notNull())
    .addColumn('return_to', 'varchar(2048)', (col) => col.notNull())
    .addColumn('code_hash', 'char(64)', (col) => col.unique())
    .addColumn('subject', 'varchar(255)')
    .addColumn('email', 'varchar(320)')
    .addColumn('email_verified', 'boolean')
    .addColumn('profile_name', 'varchar(255)')
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('expires_at', types.timestamp, (col) => col.notNull())
    .addColumn('used_at', types.timestamp)
    .modifyEnd(tableOptions(engine))
    .execute()
  await db.schema
    .createIndex('external_logins_expires_at_idx')
    .on('external_logins')
    .column('expires_at')
    .execute()
  await db.schema.createIndex('external_logins_user_id_idx').on('external_logins').column('user_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('external_logins').execute()
  await db.schema.dropTable('external_identities').execute()
}
