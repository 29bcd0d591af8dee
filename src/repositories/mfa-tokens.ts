import type { Kysely } from 'kysely'
import type { Database, MfaTokenRow, NewMfaTokenRow } from '../db/database.js'

const MFA_TOKEN_COLUMNS = ['user_id', 'client_hash', 'credential_stamp', 'created_at', 'expires_at'] as const

/**
 * What an MFA token says: whose login it continues, and what it is bound to. Comparing
 * `client_hash` and `credential_stamp` with the request's and the account's is the caller's job.
 */
export type MfaTokenRecord = Pick<MfaTokenRow, (typeof MFA_TOKEN_COLUMNS)[number]>

/**
 * The tokens that carry a login from its password to its second factor, stored only as hashes.
 * A token is usable while unused and `now < expires_at`: it is expired at `expires_at` itself.
 */
export function createMfaTokensRepository(db: Kysely<Database>) {
  return {
    async insert(token: NewMfaTokenRow): Promise<void> {
      await db.insertInto('mfa_tokens').values(token).execute()
    },

    /**
     * The token, if it is still usable; spends nothing. For checking it before the second factor
     * is (a wrong code need not cost the token); using it is `consume`'s decision.
     */
    findUsable(tokenHash: string, now: Date): Promise<MfaTokenRecord | undefined> {
      return db
        .selectFrom('mfa_tokens')
        .select(MFA_TOKEN_COLUMNS)
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
    },

    /**
     * Spends the token, if it is still usable, and answers what it says; undefined when it is
     * unknown, used or expired. The conditional UPDATE decides, so of two concurrent consumers
     * exactly one gets the token (the other's UPDATE waits for the winner's row lock, then finds
     * it used); only the winner then reads the row back by its key. That read happens in the
     * caller's transaction, where nothing can remove the row in between; outside one, a
     * concurrent deletion of the token can leave even the winner with undefined, never two
     * callers with the token.
     */
    async consume(tokenHash: string, now: Date): Promise<MfaTokenRecord | undefined> {
      const claimed = await db
        .updateTable('mfa_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      if (Number(claimed.numUpdatedRows) !== 1) return undefined
      return db
        .selectFrom('mfa_tokens')
        .select(MFA_TOKEN_COLUMNS)
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst()
    },

    /** Housekeeping: removes every token expired at `now` (used or not); answers how many. */
    async deleteExpired(now: Date): Promise<number> {
      const result = await db.deleteFrom('mfa_tokens').where('expires_at', '<=', now).executeTakeFirst()
      return Number(result.numDeletedRows)
    },

    /** Removes every token of the user (a password change, a deactivation); answers how many. */
    async deleteForUser(userId: number): Promise<number> {
      const result = await db.deleteFrom('mfa_tokens').where('user_id', '=', userId).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

export type MfaTokensRepository = ReturnType<typeof createMfaTokensRepository>
