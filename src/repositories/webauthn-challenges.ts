import type { Kysely } from 'kysely'
import type { Database, WebAuthnChallengePurpose } from '../db/database.js'

/** What a spent challenge says: a registration's carries the WebAuthn user id of its options. */
export interface SpentChallenge {
  userHandle: string | null
}

/**
 * The WebAuthn challenges the server issued, stored only as hashes, in the database so that any
 * instance can check an answer. A challenge is usable while `now < expires_at`, once, for its
 * purpose and its account.
 */
export function createWebAuthnChallengesRepository(db: Kysely<Database>) {
  return { ...challengeLifecycle(db), ...challengeReads(db) }
}

/** Issuing, spending and sweeping challenges. */
function challengeLifecycle(db: Kysely<Database>) {
  return {
    async insert(challenge: {
      challengeHash: string
      purpose: WebAuthnChallengePurpose
      userId: number | null
      userHandle?: string
      now: Date
      expiresAt: Date
    }): Promise<void> {
      await db
        .insertInto('webauthn_challenges')
        .values({
          challenge_hash: challenge.challengeHash,
          purpose: challenge.purpose,
          user_id: challenge.userId,
          user_handle: challenge.userHandle ?? null,
          created_at: challenge.now,
          expires_at: challenge.expiresAt,
        })
        .execute()
    },

    /**
     * Spends the challenge when it was issued for this purpose and account (`userId` null: issued
     * to no account) and has not expired: what it says, or undefined (and nothing spent) when it
     * does not match. The DELETE decides, so of two answers to one challenge exactly one gets it.
     */
    async consume(
      challengeHash: string,
      purpose: WebAuthnChallengePurpose,
      userId: number | null,
      now: Date,
    ): Promise<SpentChallenge | undefined> {
      const found = await db
        .selectFrom('webauthn_challenges')
        .select('user_handle')
        .where('challenge_hash', '=', challengeHash)
        .where('purpose', '=', purpose)
        .where((eb) => (userId === null ? eb('user_id', 'is', null) : eb('user_id', '=', userId)))
        .where('expires_at', '>', now)
        .executeTakeFirst()
      if (!found) return undefined
      const result = await db
        .deleteFrom('webauthn_challenges')
        .where('challenge_hash', '=', challengeHash)
        .executeTakeFirst()
      return Number(result.numDeletedRows) === 1 ? { userHandle: found.user_handle } : undefined
    },

    /** Housekeeping: removes every challenge expired at `now`; answers how many. */
    async deleteExpired(now: Date): Promise<number> {
      const result = await db
        .deleteFrom('webauthn_challenges')
        .where('expires_at', '<=', now)
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

/** What a new registration's options reuse. */
function challengeReads(db: Kysely<Database>) {
  return {
    /** The user handle of one of the user's registrations still under way at `now`, if any. */
    async pendingUserHandle(userId: number, now: Date): Promise<string | undefined> {
      const row = await db
        .selectFrom('webauthn_challenges')
        .select('user_handle')
        .where('user_id', '=', userId)
        .where('purpose', '=', 'registration')
        .where('user_handle', 'is not', null)
        .where('expires_at', '>', now)
        .orderBy('created_at')
        .orderBy('challenge_hash')
        .limit(1)
        .executeTakeFirst()
      return row?.user_handle ?? undefined
    },
  }
}

export type WebAuthnChallengesRepository = ReturnType<typeof createWebAuthnChallengesRepository>
