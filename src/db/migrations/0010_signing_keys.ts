import type { Kysely } from 'kysely'
import { columnTypes, engineOf, tableOptions } from './schema-v1.js'

// Frozen in time: this migration must keep creating exactly this schema.

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  const types = columnTypes(engine)

  // The keys access tokens are signed with, when JWT_ALGORITHM is asymmetric (the HS algorithms
  // sign with SECRET_KEY and keep nothing here). kid is the key's RFC 7638 thumbprint (SHA-256,
  // base64url). generation orders the keys (1, 2, 3…) and is unique, so that of two instances
  // rotating at once exactly one adds the next key. public_jwk is the public key as a JWK (JSON),
  // as GET /.well-known/jwks.json publishes it; private_key is the PKCS#8 PEM encrypted at rest
  // (auth/data-encryption.ts, context `signing-key:<kid>`), erased (null) once the key is retired.
  // A key is published from created_at, signs from activates_at until a later generation
  // activates, and verifies until retires_at (null while nothing has replaced it).
  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'varchar(64)', (col) => col.primaryKey())
    .addColumn('generation', 'integer', (col) => col.notNull().unique())
    .addColumn('algorithm', 'varchar(16)', (col) => col.notNull())
    .addColumn('public_jwk', types.text, (col) => col.notNull())
    .addColumn('private_key', types.text)
    .addColumn('created_at', types.timestamp, (col) => col.notNull())
    .addColumn('activates_at', types.timestamp, (col) => col.notNull())
    .addColumn('retires_at', types.timestamp)
    .modifyEnd(tableOptions(engine))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('signing_keys').execute()
}
