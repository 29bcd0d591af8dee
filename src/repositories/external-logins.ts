import type { Kysely } from 'kysely'
import type { Database, ExternalLoginRow, NewExternalLoginRow } from '../db/database.js'

/** What the provider vouched for, as the callback stores it with the one-time code. */
export interface VouchedIdentity {
  subject: string
  email: string | null
  emailVerified: boolean
  profileName: string | null
}

export type ExternalLoginRecord = ExternalLoginRow

/**
 * Sign-ins and links with an identity provider in flight (migration 0011). Each step is one
 * conditional statement, so that of two requests with the same state or the same code exactly one
 * goes on: the callback claims the state once (`vouch`), the client's exchange claims the code once
 * (`spendCode`).
 */
export function createExternalLoginsRepository(db: Kysely<Database>) {
  return {
    async insert(row: NewExternalLoginRow): Promise<void> {
      await db.insertInto('external_logins').values(row).execute()
    },

    /** The flow of this state when the callback may still take it: not yet vouched for, not expired. */
    findPending(stateHash: string, now: Date): Promise<ExternalLoginRecord | undefined> {
      return db
        .selectFrom('external_logins')
        .selectAll()
        .where('state_hash', '=', stateHash)
        .where('code_hash', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
    },

    /**
     * Stores what the provider vouched for and the hash of the one-time code, erasing the nonce and
     * the verifier (spent); false when another request with the same state did it first.
     */
    async vouch(
      stateHash: string,
      identity: VouchedIdentity,
      codeHash: string,
      codeExpiresAt: Date,
    ): Promise<boolean> {
      const result = await db
        .updateTable('external_logins')
        .set({
          code_hash: codeHash,
          subject: identity.subject,
          email: identity.email,
          email_verified: identity.emailVerified,
          profile_name: identity.profileName,
          nonce: null,
          code_verifier: null,
          expires_at: codeExpiresAt,
        })
        .where('state_hash', '=', stateHash)
        .where('code_hash', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    /** Ends a pending flow whose answer was refused (its state is spent); one vouched for meanwhile by another callback of its state keeps its code. */
    async abandon(stateHash: string): Promise<void> {
      const pending = db.deleteFrom('external_logins').where('code_hash', 'is', null)
      await pending.where('state_hash', '=', stateHash).execute()
    },

    /** The vouched flow of a one-time code, used or not (the caller decides what a used one means). */
    findByCode(codeHash: string): Promise<ExternalLoginRecord | undefined> {
      return db.selectFrom('external_logins').selectAll().where('code_hash', '=', codeHash).executeTakeFirst()
    },

    /** Spends a one-time code that is unused and unexpired; false when it is not (or no longer) so. */
    async spendCode(codeHash: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('external_logins')
        .set({ used_at: now })
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    /** Housekeeping: flows past their expiry are worth nothing (a used code stays until then). */
    async deleteExpired(now: Date): Promise<void> {
      await db.deleteFrom('external_logins').where('expires_at', '<=', now).execute()
    },
  }
}

export type ExternalLoginsRepository = ReturnType<typeof createExternalLoginsRepository>
