import type { Redis } from 'ioredis'
import type { DependencyMonitor } from '../dependencies/monitor.js'

/**
 * Sessions whose access tokens must stop working before they expire (logout, password change or
 * reset, deactivation, deletion…), as this instance knows them.
 *
 * The database is the record (sessions.revoked_at). Each instance keeps a list of the recent
 * revocations and follows the database: every SYNC_INTERVAL_MS it reads the sessions revoked since
 * its last read. That alone bounds how long another instance's revocation can go unseen, whatever
 * part of Redis fails: a check never trusts a list older than MAX_LAG_MS; past that it reads the
 * database first (and a database that does not answer then gives 503, never a wrong "yes").
 *
 * Redis, when configured, only makes it faster: a revocation is also written there, and a check
 * that does not find the session in the list asks Redis, so that the very next request on any
 * instance is refused. While Redis does not answer (its monitor is a circuit breaker), checks go
 * by the list alone, and no request waits for Redis.
 *
 * An entry lives as long as an access token of its session could (then the token is refused for
 * its expiry anyway), so the list stays small.
 */
export interface RevocationList {
  /** True when revocations are also shared through Redis. */
  readonly sharedThroughRedis: boolean
  /** How many revoked sessions the list holds (each is dropped at the first read after it expires). */
  readonly size: number
  /**
   * Refuses the sessions here at once, and on other instances through Redis (when it answers)
   * and the database (within MAX_LAG_MS). The caller has committed the revocation to the database.
   */
  revoke(sessionIds: readonly string[]): Promise<void>
  /** Throws when it cannot answer for sure: the database has not answered for longer than MAX_LAG_MS. */
  isRevoked(sessionId: string): Promise<boolean>
  /** Reads the recent revocations from the database (throws if it cannot), then follows it. */
  start(): Promise<void>
  close(): Promise<void>
}

export interface RevokedSession {
  sessionId: string
  revokedAt: Date
}

/** The sessions the database says were revoked since a time. */
export type RevokedSince = (since: Date) => Promise<RevokedSession[]>

/** How often each instance reads the revocations it has not seen yet. */
export const SYNC_INTERVAL_MS = 500
/** The guarantee: a revocation committed anywhere is refused here within this time. */
export const MAX_LAG_MS = 1000
/**
 * Each read goes this far back before the previous one: revoked_at is written by the clock of the
 * instance that revoked, before its transaction commits, so a row can appear after a later read
 * began. Covers a commit that lands up to this long after its revoked_at, and clock skew between
 * instances (which README asks to keep in sync).
 */
const OVERLAP_MS = 30_000

export interface RevocationListOptions {
  /** How long an entry matters: an access token's lifetime, plus clock skew. */
  ttlMs: number
  revokedSince: RevokedSince
  /** Told when a read of the database fails (the database monitor). */
  onSyncFailure(error: unknown): void
  redis?: { client: Redis; keyPrefix: string; monitor: DependencyMonitor }
  now?: () => number
}

export function createRevocationList(options: RevocationListOptions): RevocationList {
  const { ttlMs, redis, now = Date.now } = options
  const revoked = revokedEntries(now)
  const database = followDatabase(options, revoked)
  const shared = redis && sharedThroughRedis(redis, ttlMs)

  return {
    sharedThroughRedis: redis !== undefined,
    get size() {
      return revoked.size()
    },

    async revoke(sessionIds) {
      const until = now() + ttlMs
      for (const id of sessionIds) revoked.remember(id, until)
      await shared?.publish(sessionIds)
    },

    async isRevoked(sessionId) {
      if (revoked.listed(sessionId)) return true
      if (database.lagging()) {
        await database.sync()
        if (revoked.listed(sessionId)) return true
      }
      if (!(await shared?.find(sessionId))) return false
      revoked.remember(sessionId, now() + ttlMs)
      return true
    },

    async start() {
      await database.sync()
      database.follow()
    },

    async close() {
      database.close()
      revoked.clear()
    },
  }
}

type RevokedEntries = ReturnType<typeof revokedEntries>

/** The sessions this instance knows revoked, each until its access tokens expire anyway. */
function revokedEntries(now: () => number) {
  const revoked = new Map<string, number>()
  return {
    remember(id: string, until: number) {
      revoked.set(id, Math.max(until, revoked.get(id) ?? 0))
    },
    listed: (id: string) => (revoked.get(id) ?? 0) > now(),
    forgetExpired(time: number) {
      for (const [id, until] of revoked) if (until <= time) revoked.delete(id)
    },
    clear: () => revoked.clear(),
    size: () => revoked.size,
  }
}

/** Reading the revocations from the database, every SYNC_INTERVAL_MS and when a check finds the list too old. */
function followDatabase(options: RevocationListOptions, revoked: RevokedEntries) {
  const { ttlMs, revokedSince, onSyncFailure, now = Date.now } = options
  /** When the last successful read of the database began: everything committed before is here. */
  let syncedFrom = Number.NEGATIVE_INFINITY
  let syncing: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false

  function sync(): Promise<void> {
    syncing ??= (async () => {
      const startedAt = now()
      const since = Math.max(syncedFrom - OVERLAP_MS, startedAt - ttlMs)
      for (const { sessionId, revokedAt } of await revokedSince(new Date(since)))
        revoked.remember(sessionId, revokedAt.getTime() + ttlMs)
      syncedFrom = startedAt
      revoked.forgetExpired(startedAt)
    })().finally(() => {
      syncing = undefined
    })
    return syncing
  }

  const follow = () => {
    if (closed) return
    timer = setTimeout(() => {
      sync()
        .catch((error: unknown) => {
          if (!closed) onSyncFailure(error)
        })
        .finally(follow)
    }, SYNC_INTERVAL_MS)
    timer.unref()
  }

  return {
    sync,
    follow,
    /** The list is too old to answer alone: a revocation elsewhere may be missing from it. */
    lagging: () => now() - syncedFrom > MAX_LAG_MS,
    close() {
      closed = true
      clearTimeout(timer)
    },
  }
}

/** Revocations written to and read from Redis, while it answers (its monitor says). */
function sharedThroughRedis(redis: NonNullable<RevocationListOptions['redis']>, ttlMs: number) {
  const key = (sessionId: string) => `${redis.keyPrefix}revoked-session:${sessionId}`
  return {
    async publish(sessionIds: readonly string[]) {
      if (sessionIds.length === 0 || !redis.monitor.available) return
      const pipeline = redis.client.pipeline()
      for (const id of sessionIds) pipeline.set(key(id), '1', 'PX', ttlMs)
      try {
        const failure = ((await pipeline.exec()) ?? []).find(([error]) => error)
        if (failure?.[0]) throw failure[0]
      } catch (error) {
        // The database has it: other instances read it from there within MAX_LAG_MS.
        redis.monitor.failed(error)
      }
    },

    /** Whether Redis has the session revoked; false when Redis does not answer. */
    async find(sessionId: string) {
      if (!redis.monitor.available) return false
      try {
        return (await redis.client.exists(key(sessionId))) !== 0
      } catch (error) {
        redis.monitor.failed(error)
        return false
      }
    },
  }
}
