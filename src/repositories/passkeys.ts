import type { Kysely } from 'kysely'
import type { Database, NewPasskeyRow, PasskeyRow } from '../db/database.js'
import { insertReturningId } from '../db/portable.js'
import type { Engine } from '../db/target.js'
import { lockUserRow } from './user-lock.js'

const PASSKEY_COLUMNS = [
  'id',
  'user_id',
  'credential_id',
  'user_handle',
  'public_key',
  'sign_count',
  'transports',
  'name',
  'device_type',
  'backed_up',
  'aaguid',
  'created_at',
  'last_used_at',
] as const

export type PasskeyRecord = Pick<PasskeyRow, (typeof PASSKEY_COLUMNS)[number]>

/**
 * The users' passkeys. `insert` and `delete` first lock the user's row (./user-lock.ts), as every
 * change of a user's second factors does: in a transaction, "is this the last factor?" and the
 * removal then see the same set. `recordUse` is one conditional UPDATE on the counter.
 */
export function createPasskeysRepository(db: Kysely<Database>, engine: Engine) {
  return { ...passkeyReads(db), ...passkeyChanges(db, engine) }
}

function passkeyReads(db: Kysely<Database>) {
  return {
    /** The user's passkeys, oldest first. */
    listForUser(userId: number): Promise<PasskeyRecord[]> {
      return db
        .selectFrom('passkeys')
        .select(PASSKEY_COLUMNS)
        .where('user_id', '=', userId)
        .orderBy('id')
        .execute()
    },

    /** The passkey with this credential (by the SHA-256 of its id), whoever's it is. */
    findByCredential(credentialHash: string): Promise<PasskeyRecord | undefined> {
      return db
        .selectFrom('passkeys')
        .select(PASSKEY_COLUMNS)
        .where('credential_hash', '=', credentialHash)
        .executeTakeFirst()
    },

    /** How many passkeys the user has. */
    async countForUser(userId: number): Promise<number> {
      const row = await db
        .selectFrom('passkeys')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow()
      return Number(row.count)
    },
  }
}

function passkeyChanges(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * Stores a new passkey; its id, or undefined when the user is gone. A credential already
     * registered (to anyone) is a unique violation of credential_hash: the caller answers 409.
     */
    async insert(passkey: NewPasskeyRow): Promise<number | undefined> {
      if (!(await lockUserRow(db, engine, passkey.user_id))) return undefined
      return insertReturningId(engine, db.insertInto('passkeys').values(passkey))
    },

    /** Renames one of the user's passkeys: false when the user has no passkey with this id. */
    async rename(userId: number, id: number, name: string): Promise<boolean> {
      const result = await db
        .updateTable('passkeys')
        .set({ name })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    /**
     * Records an assertion: the new signature counter and when. Only from the counter that was
     * read (`previousCount`): of two assertions verified against one stored counter that moves,
     * one moves it and the other is refused, as a cloned authenticator's would be. An authenticator
     * that does not count (0 stays 0, as synced passkeys report) has every use recorded; each
     * challenge still serves one answer.
     */
    async recordUse(id: number, previousCount: number, newCount: number, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('passkeys')
        .set({ sign_count: newCount, last_used_at: now })
        .where('id', '=', id)
        .where('sign_count', '=', previousCount)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    /** Removes one of the user's passkeys: false when the user has no passkey with this id. */
    async delete(userId: number, id: number): Promise<boolean> {
      await lockUserRow(db, engine, userId)
      const result = await db
        .deleteFrom('passkeys')
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return Number(result.numDeletedRows) === 1
    },

    /** Removes every passkey of the user (an admin's reset); answers how many. */
    async deleteAll(userId: number): Promise<number> {
      await lockUserRow(db, engine, userId)
      const result = await db.deleteFrom('passkeys').where('user_id', '=', userId).executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

export type PasskeysRepository = ReturnType<typeof createPasskeysRepository>
