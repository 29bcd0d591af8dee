import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'

export interface StoredResponse {
  request_hash: string
  response_status: number | null
  response_body: string | null
  expires_at: Date
}

export function createIdempotencyKeysRepository(db: Kysely<Database>) {
  return {
    /** Claims a key; throws a unique violation when it is taken (the caller reads it then). */
    async claim(userId: number, key: string, requestHash: string, now: Date, expiresAt: Date): Promise<void> {
      await db
        .insertInto('idempotency_keys')
        .values({
          user_id: userId,
          idempotency_key: key,
          request_hash: requestHash,
          created_at: now,
          expires_at: expiresAt,
        })
        .execute()
    },

    find(userId: number, key: string): Promise<StoredResponse | undefined> {
      return db
        .selectFrom('idempotency_keys')
        .select(['request_hash', 'response_status', 'response_body', 'expires_at'])
        .where('user_id', '=', userId)
        .where('idempotency_key', '=', key)
        .executeTakeFirst()
    },

    async complete(userId: number, key: string, status: number, body: string): Promise<void> {
      await db
        .updateTable('idempotency_keys')
        .set({ response_status: status, response_body: body })
        .where('user_id', '=', userId)
        .where('idempotency_key', '=', key)
        .execute()
    },

    async deleteExpired(userId: number, key: string, now: Date): Promise<void> {
      await db
        .deleteFrom('idempotency_keys')
        .where('user_id', '=', userId)
        .where('idempotency_key', '=', key)
        .where('expires_at', '<=', now)
        .execute()
    },

    async deleteAllExpired(now: Date): Promise<number> {
      const result = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

export type IdempotencyKeysRepository = ReturnType<typeof createIdempotencyKeysRepository>
