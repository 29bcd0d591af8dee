import type { Kysely } from 'kysely'
import type { Database, MfaTokenRow, NewMfaTokenRow } from '../db/database.js'
import type { Engine } from '../db/target.js'
import { lockUserRow } from './user-lock.js'

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
export function createMfaTokensRepository(db: Kysely<Database>, engine: Engine) {
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
     * Spends the user's token, if it is still usable, and answers what it says; undefined when it
     * is unknown, another user's, used or expired. It first locks the user's row (./user-lock.ts),
     * as every change of the user's second factors does: called in the transaction that then
     * spends the factor, a login and a factor change of one user run one after the other, and
     * take their locks in the same order. The conditional UPDATE decides, so of two concurrent
     * consumers exactly one gets the token (the other's UPDATE waits for the winner's row lock,
     * then finds it used); only the winner then reads the row back by its key. When the winner's
     * transaction rolls back (its factor was wrong), the token is unused again for the other.
     */
    async consume(tokenHash: string, userId: number, now: Date): Promise<MfaTokenRecord | undefined> {
      await lockUserRow(db, engine, userId)
      const claimed = await db
        .updateTable('mfa_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('user_id', '=', userId)
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
