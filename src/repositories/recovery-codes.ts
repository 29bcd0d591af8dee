import type { Kysely } from 'kysely'
import type { Database } from '../db/database.js'
import type { Engine } from '../db/target.js'
import { lockUserRow } from './user-lock.js'

/**
 * Each user's set of single-use recovery codes, stored only as hashes (src/auth/recovery-codes.ts
 * `hashRecoveryCode`). `replaceAll` and `deleteAll` first lock the user's row (./user-lock.ts), as
 * totp-factors.ts's changes do: inside a transaction, two changes of one user's set run one after
 * the other, and the set left is always one whole set. `consume` is one conditional UPDATE.
 */
export function createRecoveryCodesRepository(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * Replaces the user's whole set with `codeHashes`, unused, created at `now`: every earlier code
     * of the user, used or not, is gone. Call it in the transaction that decides the change: its
     * statements (lock, delete, insert) then commit together. The hashes must differ from each
     * other (a repeated one is a unique violation); an empty list leaves the user without codes.
     * False, writing nothing, when there is no such user.
     */
    async replaceAll(userId: number, codeHashes: string[], now: Date): Promise<boolean> {
      if (!(await lockUserRow(db, engine, userId))) return false
      await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute()
      if (codeHashes.length > 0)
        await db
          .insertInto('recovery_codes')
          .values(codeHashes.map((codeHash) => ({ user_id: userId, code_hash: codeHash, created_at: now })))
          .execute()
      return true
    },

    /**
     * Spends one of the user's codes: true when `codeHash` is an unused code of this user, which is
     * now used (at `now`); false otherwise (unknown, another user's, already used). One
     * conditional UPDATE: of two concurrent uses of one code, exactly one sees true.
     */
    async consume(userId: number, codeHash: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('recovery_codes')
        .set({ used_at: now })
        .where('user_id', '=', userId)
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    /** How many of the user's codes are still unused. */
    async countUnused(userId: number): Promise<number> {
      const row = await db
        .selectFrom('recovery_codes')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirstOrThrow()
      return Number(row.count)
    },

    /** Removes every code of the user (when the last second factor goes); answers how many. */
    async deleteAll(userId: number): Promise<number> {
      await lockUserRow(db, engine, userId)
      const result = await db.deleteFrom('recovery_codes').where('user_id', '=', userId).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

export type RecoveryCodesRepository = ReturnType<typeof createRecoveryCodesRepository>
