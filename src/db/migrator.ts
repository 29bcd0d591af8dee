import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely'
import * as m0001 from './migrations/0001_users_and_products.js'
import * as m0002 from './migrations/0002_sessions.js'
import * as m0003 from './migrations/0003_account_tokens.js'
import * as m0004 from './migrations/0004_catalogue.js'
import * as m0005 from './migrations/0005_audit_events.js'
import * as m0006 from './migrations/0006_readiness_probe.js'
import * as m0007 from './migrations/0007_sessions_revoked_at.js'
import * as m0008 from './migrations/0008_second_factors.js'
import * as m0009 from './migrations/0009_passkeys.js'
import * as m0010 from './migrations/0010_signing_keys.js'
import * as m0011 from './migrations/0011_external_identities.js'

/** Every migration, in order. Explicit, so a build never depends on reading a folder at run time. */
const migrations: Record<string, Migration> = {
  '0001_users_and_products': m0001,
  '0002_sessions': m0002,
  '0003_account_tokens': m0003,
  '0004_catalogue': m0004,
  '0005_audit_events': m0005,
  '0006_readiness_probe': m0006,
  '0007_sessions_revoked_at': m0007,
  '0008_second_factors': m0008,
  '0009_passkeys': m0009,
  '0010_signing_keys': m0010,
  '0011_external_identities': m0011,
}

/** The names of every migration, in the order they apply. */
export const MIGRATION_NAMES = Object.keys(migrations).sort()

export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } })
}

export class MigrationError extends Error {
  override name = 'MigrationError'
}

/** Applies every pending migration; throws one readable error naming the migration that failed. */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  const resultSet = await createMigrator(db).migrateToLatest()
  if (resultSet.error) {
    const failed = resultSet.results?.find((result) => result.status === 'Error')
    const reason = resultSet.error instanceof Error ? resultSet.error.message : String(resultSet.error)
    throw new MigrationError(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${reason}`, {
      cause: resultSet.error,
    })
  }
  return resultSet
}
