import type { Redis } from 'ioredis'

/**
 * Sessions whose access tokens must stop working before they expire (logout, password change,
 * deactivation…). An entry lives as long as an access token of that session could: after that the
 * token is refused for its expiry anyway, so the set stays small. Checking it needs no database read.
 *
 * The database is the record (sessions.revoked_at); the set is a copy of its recent part. It is
 * rebuilt from the database whenever it may have lost entries: when the process starts (memory),
 * and when Redis comes back, was emptied, or missed a write (Redis).
 */
export interface RevocationStore {
  readonly kind: 'memory' | 'redis'
  /** Throws when the set cannot be written (Redis away): the caller still has the database. */
  revoke(sessionIds: readonly string[]): Promise<void>
  /** Throws when the set cannot answer for sure (Redis away): the caller then asks the database. */
  isRevoked(sessionId: string): Promise<boolean>
  /** Refills the set from the database. */
  restore(): Promise<void>
  close(): Promise<void>
}

export interface RevokedSession {
  sessionId: string
  revokedAt: Date
}

/** The sessions the database says were revoked since a time. */
export type RevokedSince = (since: Date) => Promise<RevokedSession[]>

interface StoreOptions {
  /** Where restore() reads from; without it the set starts (and restores to) empty. */
  revokedSince?: RevokedSince
  now?: () => number
}

/** One instance: a map of session id → time the entry may be forgotten. */
export function createMemoryRevocationStore(ttlMs: number, options: StoreOptions = {}): RevocationStore {
  const { revokedSince, now = Date.now } = options
  const revoked = new Map<string, number>()
  const remember = (id: string, until: number) => {
    if (until > (revoked.get(id) ?? 0)) revoked.set(id, until)
  }
  const sweep = () => {
    const time = now()
    for (const [id, until] of revoked) if (until <= time) revoked.delete(id)
  }
  const timer = setInterval(sweep, Math.min(ttlMs, 60_000))
  timer.unref()
  return {
    kind: 'memory',
    async revoke(sessionIds) {
      const until = now() + ttlMs
      for (const id of sessionIds) remember(id, until)
    },
    async isRevoked(sessionId) {
      const until = revoked.get(sessionId)
      return until !== undefined && until > now()
    },
    async restore() {
      if (!revokedSince) return
      for (const { sessionId, revokedAt } of await revokedSince(new Date(now() - ttlMs)))
        remember(sessionId, revokedAt.getTime() + ttlMs)
    },
    async close() {
      clearInterval(timer)
      revoked.clear()
    },
  }
}

/**
 * Several instances: the set lives in Redis, so a logout through one instance is refused by every
 * other on the very next request. Entries expire in Redis by themselves.
 *
 * Redis may lose entries: it restarts empty (no persistence), is flushed, or misses a write while
 * this instance cannot reach it. A marker key, written last by every restore, tells whether Redis
 * holds a complete set; until it does (and after a failed write, or a reconnection), the set is
 * restored from the database first, and a check that cannot be answered for sure throws.
 */
export function createRedisRevocationStore(
  redis: Redis,
  ttlMs: number,
  keyPrefix: string,
  options: StoreOptions = {},
): RevocationStore {
  const { revokedSince, now = Date.now } = options
  const key = (sessionId: string) => `${keyPrefix}revoked-session:${sessionId}`
  const completeKey = `${keyPrefix}revoked-sessions:complete`
  /** Redis may lack entries that the database has: restore before trusting it. */
  let stale = true
  /** Writes that failed: a restore that overlapped one must not declare the set complete. */
  let failedWrites = 0
  let restoring: Promise<void> | undefined

  async function exec(pipeline: ReturnType<Redis['pipeline']>) {
    const results = (await pipeline.exec()) ?? []
    const failure = results.find(([error]) => error)
    if (failure?.[0]) throw failure[0]
  }

  function restore(): Promise<void> {
    restoring ??= (async () => {
      try {
        if (redis.status !== 'ready') throw new Error(`Redis is not connected (${redis.status})`)
        const failuresBefore = failedWrites
        const time = now()
        const entries = revokedSince ? await revokedSince(new Date(time - ttlMs)) : []
        const pipeline = redis.pipeline()
        for (const { sessionId, revokedAt } of entries) {
          const left = revokedAt.getTime() + ttlMs - time
          if (left > 0) pipeline.set(key(sessionId), '1', 'PX', left)
        }
        pipeline.set(completeKey, new Date(time).toISOString())
        await exec(pipeline)
        if (failedWrites === failuresBefore) stale = false
      } catch (error) {
        stale = true
        throw error
      }
    })().finally(() => {
      restoring = undefined
    })
    return restoring
  }

  // Reconnected: Redis may have restarted empty, or missed our writes while we were away.
  const onReady = () => {
    stale = true
    restore().catch(() => {})
  }
  redis.on('ready', onReady)

  return {
    kind: 'redis',
    async revoke(sessionIds) {
      if (sessionIds.length === 0) return
      const pipeline = redis.pipeline()
      for (const id of sessionIds) pipeline.set(key(id), '1', 'PX', ttlMs)
      try {
        await exec(pipeline)
      } catch (error) {
        stale = true
        failedWrites += 1
        throw error
      }
    },
    async isRevoked(sessionId) {
      if (stale) await restore()
      const [revoked, complete] = await redis.mget(key(sessionId), completeKey)
      if (complete !== null) return revoked !== null
      // Redis lost the set (restarted empty, flushed): refill it, then answer.
      stale = true
      await restore()
      return (await redis.exists(key(sessionId))) === 1
    },
    restore,
    async close() {
      // The Redis connection belongs to the redis plugin, which closes it.
      redis.off('ready', onReady)
    },
  }
}
