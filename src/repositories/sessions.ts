import type { Kysely } from 'kysely'
import type { Database, NewSessionRow, SessionRow } from '../db/database.js'

const SESSION_COLUMNS = [
  'id',
  'user_id',
  'created_at',
  'last_used_at',
  'expires_at',
  'user_agent',
  'ip',
  'revoked_at',
  'revoked_reason',
] as const

export type SessionRecord = Pick<SessionRow, (typeof SESSION_COLUMNS)[number]>

export interface RefreshTokenLookup {
  session_id: string
  used_at: Date | null
  token_expires_at: Date
  /** null when the user was deleted. */
  user_id: number | null
  /** The login that started the session: its absolute end is counted from here. */
  session_created_at: Date
  session_expires_at: Date
  revoked_at: Date | null
  /** The session's authentication methods, space-separated (sessions.amr). */
  amr: string
}

/** Sessions and their refresh tokens: the sessions' rows read and changed, and the tokens. */
export function createSessionsRepository(db: Kysely<Database>) {
  return { ...sessionReads(db), ...sessionChanges(db), ...refreshTokens(db) }
}

function sessionReads(db: Kysely<Database>) {
  return {
    findById(id: string): Promise<SessionRecord | undefined> {
      return db.selectFrom('sessions').select(SESSION_COLUMNS).where('id', '=', id).executeTakeFirst()
    },

    /** The caller's sessions that can still be used, most recently used first. */
    listActive(userId: number, now: Date): Promise<SessionRecord[]> {
      return db
        .selectFrom('sessions')
        .select(SESSION_COLUMNS)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('last_used_at', 'desc')
        .orderBy('id')
        .execute()
    },

    async activeIds(userId: number): Promise<string[]> {
      const rows = await db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute()
      return rows.map((row) => row.id)
    },

    /** Sessions revoked since a time: what the revocation set must hold (it is rebuilt from them). */
    async revokedSince(since: Date): Promise<{ id: string; revoked_at: Date }[]> {
      const rows = await db
        .selectFrom('sessions')
        .select(['id', 'revoked_at'])
        .where('revoked_at', '>=', since)
        .execute()
      return rows.flatMap((row) => (row.revoked_at ? [{ id: row.id, revoked_at: row.revoked_at }] : []))
    },
  }
}

function sessionChanges(db: Kysely<Database>) {
  return {
    async insert(session: NewSessionRow): Promise<void> {
      await db.insertInto('sessions').values(session).execute()
    },

    /**
     * When the session's user last proved a second factor in it: null when never (a password
     * login), undefined when the session is unknown, ended or not the user's.
     */
    async factorVerifiedAt(id: string, userId: number): Promise<Date | null | undefined> {
      const row = await db
        .selectFrom('sessions')
        .select('factor_verified_at')
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return row?.factor_verified_at
    },

    /** Records a second factor proved in the user's session now: false when it has ended. */
    async markFactorVerified(id: string, userId: number, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('sessions')
        .set({ factor_verified_at: now })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },

    async touch(id: string, now: Date, expiresAt: Date): Promise<void> {
      await db
        .updateTable('sessions')
        .set({ last_used_at: now, expires_at: expiresAt })
        .where('id', '=', id)
        .execute()
    },

    async revoke(ids: string[], reason: string, now: Date): Promise<void> {
      if (ids.length === 0) return
      await db
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: reason })
        .where('id', 'in', ids)
        .where('revoked_at', 'is', null)
        .execute()
    },

    /** Forgets sessions that ended long ago (their used refresh tokens go with them). */
    async deleteEndedBefore(cutoff: Date): Promise<number> {
      const result = await db
        .deleteFrom('sessions')
        .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)]))
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}

/** Each refresh token is used once; its successor is stored when it is. */
function refreshTokens(db: Kysely<Database>) {
  return {
    async insertRefreshToken(
      tokenHash: string,
      sessionId: string,
      now: Date,
      expiresAt: Date,
    ): Promise<void> {
      await db
        .insertInto('refresh_tokens')
        .values({ token_hash: tokenHash, session_id: sessionId, created_at: now, expires_at: expiresAt })
        .execute()
    },

    findRefreshToken(tokenHash: string): Promise<RefreshTokenLookup | undefined> {
      return db
        .selectFrom('refresh_tokens')
        .innerJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
        .select([
          'refresh_tokens.session_id',
          'refresh_tokens.used_at',
          'refresh_tokens.expires_at as token_expires_at',
          'sessions.user_id',
          'sessions.created_at as session_created_at',
          'sessions.expires_at as session_expires_at',
          'sessions.revoked_at',
          'sessions.amr',
        ])
        .where('refresh_tokens.token_hash', '=', tokenHash)
        .executeTakeFirst()
    },

    /**
     * Marks a refresh token used, if nobody did first: of two concurrent refreshes with one
     * token, exactly one sees `true`. The other's UPDATE waits for the winner's row lock (on
     * SQLite, transactions run one at a time), so when it sees `false` the winner has committed.
     */
    async claimRefreshToken(tokenHash: string, now: Date): Promise<boolean> {
      const result = await db
        .updateTable('refresh_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

export type SessionsRepository = ReturnType<typeof createSessionsRepository>
