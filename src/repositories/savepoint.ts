import { sql, type Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import { isDeadlock } from '../db/errors.js'

/**
 * Runs one statement so that its failure undoes only itself: inside a transaction under a
 * savepoint (PostgreSQL refuses every later statement of a transaction after a failed one), else
 * as it is. The error is still thrown. A deadlock ended the whole transaction, savepoint
 * included, so nothing is rolled back to then.
 */
export async function alone<T>(db: Kysely<Database>, name: string, statement: () => Promise<T>): Promise<T> {
  if (!db.isTransaction) return statement()
  await sql`savepoint ${sql.id(name)}`.execute(db)
  let result: T
  try {
    result = await statement()
  } catch (error) {
    if (!isDeadlock(error)) await sql`rollback to savepoint ${sql.id(name)}`.execute(db)
    throw error
  }
  await sql`release savepoint ${sql.id(name)}`.execute(db)
  return result
}
