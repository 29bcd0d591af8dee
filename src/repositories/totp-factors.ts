import type { Kysely } from 'kysely'
import type { Database, TotpFactorRow } from '../db/database.js'
import type { Engine } from '../db/target.js'
import { lockUserRow } from './user-lock.js'

const TOTP_FACTOR_COLUMNS = ['secret_encrypted', 'created_at', 'confirmed_at', 'last_used_step'] as const

/** A user's TOTP factor: pending while `confirmed_at` is null, active once it is set. */
export type TotpFactorRecord = Pick<TotpFactorRow, (typeof TOTP_FACTOR_COLUMNS)[number]>

/**
 * The TOTP factors, at most one per user. The functions that create, activate or remove one
 * (`startEnrolment`, `confirm`, `delete`) first lock the user's row (./user-lock.ts): called inside
 * a transaction, they run one at a time per user, also with recovery-codes.ts's `replaceAll` and
 * `deleteAll`. `acceptStep`, the replay guard of every login, is one conditional UPDATE.
 */
export function createTotpFactorsRepository(db: Kysely<Database>, engine: Engine) {
  return { ...enrolment(db, engine), ...use(db, engine) }
}

/** Reading a factor, starting an enrolment and confirming it. */
function enrolment(db: Kysely<Database>, engine: Engine) {
  return {
    /** The user's factor, pending or active, or undefined when there is none. */
    find(userId: number): Promise<TotpFactorRecord | undefined> {
      return db
        .selectFrom('totp_factors')
        .select(TOTP_FACTOR_COLUMNS)
        .where('user_id', '=', userId)
        .executeTakeFirst()
    },

    /**
     * Makes `secretEncrypted` the user's pending enrolment, started at `now`: true. A pending
     * enrolment the user had is replaced (its secret is gone, so a code of it no longer confirms).
     * An active factor is never touched: false, and false too when there is no such user.
     * Two concurrent calls for one user, each in its transaction, run one after the other (the
     * user's row is locked first): both answer true, and the later one's secret stays.
     */
    async startEnrolment(userId: number, secretEncrypted: string, now: Date): Promise<boolean> {
      if (!(await lockUserRow(db, engine, userId))) return false
      const replaced = await db
        .updateTable('totp_factors')
        .set({ secret_encrypted: secretEncrypted, created_at: now })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is', null)
        .executeTakeFirst()
      if (Number(replaced.numUpdatedRows) === 1) return true
      const active = await db
        .selectFrom('totp_factors')
        .select('user_id')
        .where('user_id', '=', userId)
        .executeTakeFirst()
      if (active) return false
      await db
        .insertInto('totp_factors')
        .values({ user_id: userId, secret_encrypted: secretEncrypted, created_at: now })
        .execute()
      return true
    },

    /**
     * Activates the user's pending enrolment, only while its secret is still `secretEncrypted`
     * (the one the caller checked the code against: an enrolment restarted meanwhile is not
     * activated with the old code), and records `step`, the confirming code's, as the last one
     * accepted: that code cannot then log in. True once; false when there is no pending
     * enrolment with that secret (none, another secret, or already active). Of two concurrent
     * confirmations, exactly one sees true.
     */
    async confirm(userId: number, secretEncrypted: string, step: number, now: Date): Promise<boolean> {
      await lockUserRow(db, engine, userId)
      const result = await db
        .updateTable('totp_factors')
        .set({ confirmed_at: now, last_used_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is', null)
        .where('secret_encrypted', '=', secretEncrypted)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

/** Using an active factor, and removing one. */
function use(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * The replay guard: records `step` (the step whose code the caller has just verified) as the
     * last one accepted, only when the user's factor is active and `step` is later than the last
     * accepted step. True: the code may let the user in; false: that step or a later one was
     * already accepted (a replay, or an older code), or the user has no active factor.
     * One conditional UPDATE: of two concurrent calls with the same step, exactly one sees true
     * (the other's UPDATE waits for the winner's row lock, then finds the step taken).
     */
    async acceptStep(userId: number, step: number): Promise<boolean> {
      const result = await db
        .updateTable('totp_factors')
        .set({ last_used_step: step })
        .where('user_id', '=', userId)
        // A pending enrolment has no last step (the table's check constraint), and `null < step`
        // is never true: this one comparison also refuses every factor that is not active.
        .where('last_used_step', '<', step)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    /** Removes the user's factor, pending or active: true when there was one. */
    async delete(userId: number): Promise<boolean> {
      await lockUserRow(db, engine, userId)
      const result = await db.deleteFrom('totp_factors').where('user_id', '=', userId).executeTakeFirst()
      return Number(result.numDeletedRows) === 1
    },
  }
}

export type TotpFactorsRepository = ReturnType<typeof createTotpFactorsRepository>
