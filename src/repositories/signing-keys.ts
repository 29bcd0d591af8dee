import type { Kysely } from 'kysely'
import type { Database, SigningKeyRow } from '../db/database.js'
import { isUniqueViolation } from '../db/errors.js'
import { alone } from './savepoint.js'

export type { SigningKeyRow }

/**
 * The keys access tokens are signed with. Rows are never deleted: a retired key stays listed,
 * with its private part erased.
 */
export function createSigningKeysRepository(db: Kysely<Database>) {
  return {
    /** Every key, oldest generation first. */
    async list(): Promise<SigningKeyRow[]> {
      return db.selectFrom('signing_keys').selectAll().orderBy('generation').execute()
    },

    /**
     * Adds a key. Answers false, and adds nothing, when a key of that generation (or that kid)
     * exists already: another instance added it first. Inside a transaction the insert runs under
     * a savepoint, so that the transaction can go on (PostgreSQL refuses every statement after a
     * failed one otherwise).
     */
    async insert(key: Omit<SigningKeyRow, 'retires_at'>): Promise<boolean> {
      try {
        await alone(db, 'signing_key', () =>
          db
            .insertInto('signing_keys')
            .values({ ...key, retires_at: null })
            .execute(),
        )
      } catch (error) {
        if (isUniqueViolation(error)) return false
        throw error
      }
      return true
    },

    /** Gives every key but `kid` that has no retirement time yet this one. */
    async retireAllBut(kid: string, retiresAt: Date): Promise<void> {
      await db
        .updateTable('signing_keys')
        .set({ retires_at: retiresAt })
        .where('kid', '!=', kid)
        .where('retires_at', 'is', null)
        .execute()
    },

    /** Erases the private part of every key retired at `now`; answers how many were erased. */
    async erasePrivateKeysRetiredBy(now: Date): Promise<number> {
      const result = await db
        .updateTable('signing_keys')
        .set({ private_key: null })
        .where('retires_at', '<=', now)
        .where('private_key', 'is not', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows)
    },
  }
}

export type SigningKeysRepository = ReturnType<typeof createSigningKeysRepository>
