/**
 * Sessions this instance has found in the database, each with its user. An access token is only
 * honoured for a session the server issued, to the user it was issued to: a token signed with the
 * right key but naming another session (one minted by a deployment that shares the key, or one
 * from before a database restore) is refused, and a request never reaches the database on behalf
 * of a user that does not exist. Revocation is checked separately (the revocation list): a known
 * session stays known, so one database read per session and instance is enough.
 */
export interface KnownSessions {
  /** 'issued' when the session exists, belongs to the user and was not revoked. */
  check(sessionId: string, userId: number): Promise<'issued' | 'unknown' | 'revoked'>
}

export interface SessionOwnership {
  user_id: number | null
  revoked_at: Date | null
}

/** Bounded: past this many sessions, the oldest entries are read again when next used. */
const CAPACITY = 10_000

export function createKnownSessions(
  find: (sessionId: string) => Promise<SessionOwnership | undefined>,
  capacity = CAPACITY,
): KnownSessions {
  const known = new Map<string, number>()
  return {
    async check(sessionId, userId) {
      const owner = known.get(sessionId)
      if (owner !== undefined) return owner === userId ? 'issued' : 'unknown'
      const session = await find(sessionId)
      // A deleted user's sessions keep their rows with user_id null: not theirs any more.
      if (!session || session.user_id !== userId) return 'unknown'
      if (session.revoked_at !== null) return 'revoked'
      if (known.size >= capacity) known.delete(known.keys().next().value as string)
      known.set(sessionId, userId)
      return 'issued'
    },
  }
}
