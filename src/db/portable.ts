/** Query helpers that hide a dialect difference from repositories, so that they stay portable. */
import { sql, type InsertQueryBuilder, type InsertResult } from 'kysely'
import type { Database } from './database.js'
import type { Engine } from './target.js'

/** Runs an INSERT and returns the new row's id (MySQL has no RETURNING). */
export async function insertReturningId<TB extends keyof Database>(
  engine: Engine,
  query: InsertQueryBuilder<Database, TB, InsertResult>,
): Promise<number> {
  if (engine === 'mysql') {
    const result = await query.executeTakeFirstOrThrow()
    return Number(result.insertId)
  }
  const row = await query.returning(sql<number>`id`.as('id')).executeTakeFirstOrThrow()
  return Number(row.id)
}
