import type { Kysely } from 'kysely'
import type { Database, ExternalIdentityRow } from '../db/database.js'
import { isUniqueViolation } from '../db/errors.js'
import { insertReturningId } from '../db/portable.js'
import type { Engine } from '../db/target.js'
import { alone } from './savepoint.js'
import { lockUserRow } from './user-lock.js'

const IDENTITY_COLUMNS = [
  'id',
  'user_id',
  'provider',
  'subject',
  'email',
  'created_at',
  'last_used_at',
] as const

export type ExternalIdentityRecord = Pick<ExternalIdentityRow, (typeof IDENTITY_COLUMNS)[number]>

/** The accounts of identity providers linked to ours; unique per (provider, subject) and per (user, provider). */
export function createExternalIdentitiesRepository(db: Kysely<Database>, engine: Engine) {
  return { ...identityReads(db), ...identityChanges(db, engine) }
}

function identityReads(db: Kysely<Database>) {
  return {
    /** The identity of this provider's subject, whoever's it is. */
    find(provider: string, subject: string): Promise<ExternalIdentityRecord | undefined> {
      return db
        .selectFrom('external_identities')
        .select(IDENTITY_COLUMNS)
        .where('provider', '=', provider)
        .where('subject', '=', subject)
        .executeTakeFirst()
    },

    /** The user's identities, oldest first. */
    listForUser(userId: number): Promise<ExternalIdentityRecord[]> {
      return db
        .selectFrom('external_identities')
        .select(IDENTITY_COLUMNS)
        .where('user_id', '=', userId)
        .orderBy('id')
        .execute()
    },

    async countForUser(userId: number): Promise<number> {
      const row = await db
        .selectFrom('external_identities')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow()
      return Number(row.count)
    },
  }
}

function identityChanges(db: Kysely<Database>, engine: Engine) {
  return {
    /**
     * Links a provider's subject to a user: its id, or undefined when the subject is linked already
     * (to anyone) or the user has an identity of this provider: the unique keys decide, so two links
     * at once cannot both succeed.
     */
    async insert(identity: {
      userId: number
      provider: string
      subject: string
      email: string | null
      now: Date
    }): Promise<number | undefined> {
      try {
        return await alone(db, 'external_identity', () =>
          insertReturningId(
            engine,
            db.insertInto('external_identities').values({
              user_id: identity.userId,
              provider: identity.provider,
              subject: identity.subject,
              email: identity.email,
              created_at: identity.now,
              last_used_at: identity.now,
            }),
          ),
        )
      } catch (error) {
        if (isUniqueViolation(error)) return undefined
        throw error
      }
    },

    /** A sign-in with the identity: when, and the email the provider gave this time. */
    async recordUse(id: number, email: string | null, now: Date): Promise<void> {
      await db
        .updateTable('external_identities')
        .set({ email, last_used_at: now })
        .where('id', '=', id)
        .execute()
    },

    /**
     * Unlinks the user's identity of this provider; whether there was one. Locks the user's row
     * first (./user-lock.ts): in a transaction, "is this the last way to log in?" then sees every
     * other change of the user's ways in (another unlink, a passkey removal) finished.
     */
    async delete(userId: number, provider: string): Promise<boolean> {
      await lockUserRow(db, engine, userId)
      const result = await db
        .deleteFrom('external_identities')
        .where('user_id', '=', userId)
        .where('provider', '=', provider)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    },
  }
}

export type ExternalIdentitiesRepository = ReturnType<typeof createExternalIdentitiesRepository>
