import type { Kysely } from 'kysely'
import type { AccountTokenPurpose, Database, NewAccountTokenRow } from '../db/database.js'

export interface AccountTokenHolder {
  user_id: number
  /** The address the token was mailed to. */
  email: string
}

export interface TokenRecipient {
  id: number
  email: string
  is_active: boolean
}

/** Issuing a token: to whom it goes, and making room for it. */
function tokenIssuing(db: Kysely<Database>) {
  return {
    async insert(token: NewAccountTokenRow): Promise<void> {
      await db.insertInto('account_tokens').values(token).execute()
    },

    /**
     * The user's tokens that a new one makes obsolete: spent ones (used or expired), which would
     * otherwise pile up, and every one of `supersededPurpose` when a newer link replaces them.
     */
    async findObsolete(
      userId: number,
      now: Date,
      supersededPurpose?: AccountTokenPurpose,
    ): Promise<string[]> {
      const rows = await db
        .selectFrom('account_tokens')
        .select('token_hash')
        .where('user_id', '=', userId)
        .where((eb) =>
          eb.or([
            eb('used_at', 'is not', null),
            eb('expires_at', '<=', now),
            ...(supersededPurpose ? [eb('purpose', '=', supersededPurpose)] : []),
          ]),
        )
        .execute()
      return rows.map((row) => row.token_hash)
    },

    /**
     * Deletes by primary key, so that only these rows are locked. (A DELETE by user_id takes gap
     * locks on MySQL: two tokens issued at once for one user, each deleting then inserting,
     * would deadlock.)
     */
    async deleteByHashes(tokenHashes: string[]): Promise<void> {
      if (tokenHashes.length === 0) return
      await db.deleteFrom('account_tokens').where('token_hash', 'in', tokenHashes).execute()
    },

    /** The account a recovery email goes to (emails are stored normalised: pass a normalised one). */
    findRecipientByEmail(email: string): Promise<TokenRecipient | undefined> {
      return db
        .selectFrom('users')
        .select(['id', 'email', 'is_active'])
        .where('email', '=', email)
        .executeTakeFirst()
    },
  }
}

/** Redeeming a token: checking it, spending it once, and what it proves. */
function tokenRedemption(db: Kysely<Database>) {
  return {
    /** Whose token this is, if it is still unused and unexpired. Deciding use is `consume`'s job. */
    findUsable(
      tokenHash: string,
      purpose: AccountTokenPurpose,
      now: Date,
    ): Promise<AccountTokenHolder | undefined> {
      return db
        .selectFrom('account_tokens')
        .select(['user_id', 'email'])
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
    },

    /**
     * Marks a token used, if it is still unused and unexpired: one conditional UPDATE, so that of
     * two concurrent requests with one token exactly one sees `true`.
     */
    async consume(tokenHash: string, purpose: AccountTokenPurpose, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('account_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    /**
     * Marks the user's email verified only while it is still `email` (the address the token was
     * sent to): checked in the UPDATE itself, so a concurrent email change cannot slip in between.
     */
    async markEmailVerified(userId: number, email: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('users')
        .set({ email_verified: true, updated_at: now })
        .where('id', '=', userId)
        .where('email', '=', email)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

export function createAccountTokensRepository(db: Kysely<Database>) {
  return { ...tokenIssuing(db), ...tokenRedemption(db) }
}

export type AccountTokensRepository = ReturnType<typeof createAccountTokensRepository>
