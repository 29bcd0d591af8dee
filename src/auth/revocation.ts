import type { Redis } from 'ioredis'

/**
 * Sessions whose access tokens must stop working before they expire (logout, password change,
 * deactivation…). An entry lives as long as an access token of that session could: after that the
 * token is refused for its expiry anyway, so the set stays small. Checking it needs no database read.
 */
export interface RevocationStore {
  readonly kind: 'memory' | 'redis'
  revoke(sessionIds: readonly string[]): Promise<void>
  isRevoked(sessionId: string): Promise<boolean>
  close(): Promise<void>
}

/** One instance: a map of session id → time the entry may be forgotten. */
export function createMemoryRevocationStore(ttlMs: number, now: () => number = Date.now): RevocationStore {
  const revoked = new Map<string, number>()
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
      for (const id of sessionIds) revoked.set(id, until)
    },
    async isRevoked(sessionId) {
      const until = revoked.get(sessionId)
      return until !== undefined && until > now()
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
 */
export function createRedisRevocationStore(redis: Redis, ttlMs: number, keyPrefix: string): RevocationStore {
  const key = (sessionId: string) => `${keyPrefix}revoked-session:${sessionId}`
  return {
    kind: 'redis',
    async revoke(sessionIds) {
      if (sessionIds.length === 0) return
      const pipeline = redis.pipeline()
      for (const id of sessionIds) pipeline.set(key(id), '1', 'PX', ttlMs)
      const results = (await pipeline.exec()) ?? []
      const failure = results.find(([error]) => error)
      if (failure?.[0]) throw failure[0]
    },
    async isRevoked(sessionId) {
      return (await redis.exists(key(sessionId))) === 1
    },
    async close() {
      // The Redis connection belongs to the redis plugin, which closes it.
    },
  }
}
