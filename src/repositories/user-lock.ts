import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { Engine } from '../db/target.js'

/**
 * Locks the user's row until the surrounding transaction ends, and says whether the user exists.
 * The repositories that change which second factors a user has (totp-factors.ts, recovery-codes.ts)
 * take it before touching any row of theirs: two such changes for one user then run one after the
 * other, and always take their locks in the same order (the user's row first), so they cannot
 * deadlock each other. The row always exists while the user does, unlike the factor rows, which
 * an enrolment may be about to create.
 *
 * Outside a transaction it locks nothing beyond its own statement. SQLite runs one transaction at
 * a time and has no FOR UPDATE: there it only reads.
 */
export async function lockUserRow(db: Kysely<Database>, engine: Engine, userId: number): Promise<boolean> {
  const row = await db
    .selectFrom('users')
    .select('id')
    .where('id', '=', userId)
    .$if(engine !== 'sqlite', (qb) => qb.forUpdate())
    .executeTakeFirst()
  return row !== undefined
}
