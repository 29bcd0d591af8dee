import type { Redis } from 'ioredis'
import type { DependencyMonitor } from '../dependencies/monitor.js'

/** How many hits a key has in its current window, and when that window ends. */
export interface WindowCount {
  count: number
  /** Milliseconds until the window ends and the count starts again from zero. */
  resetMs: number
}

/** Fixed-window hit counters: the same interface in memory, in Redis, or Redis with a fallback. */
export interface CounterStore {
  readonly kind: 'memory' | 'redis'
  hit(key: string, windowMs: number): Promise<WindowCount>
  close(): Promise<void>
}

/** How often the memory counters drop the windows that have ended (at a hit, on the store's clock). */
export const SWEEP_INTERVAL_MS = 30_000

/** One instance's counters, with the number of windows it holds (ended ones go at the next sweep). */
export function createMemoryCounterStore(
  now: () => number = Date.now,
): CounterStore & { readonly size: number } {
  const windows = new Map<string, { count: number; endsAt: number }>()
  let sweptAt = now()
  const sweep = (time: number) => {
    sweptAt = time
    for (const [key, window] of windows) if (window.endsAt <= time) windows.delete(key)
  }
  return {
    kind: 'memory',
    get size() {
      return windows.size
    },
    async hit(key, windowMs) {
      const time = now()
      if (time - sweptAt >= SWEEP_INTERVAL_MS) sweep(time)
      let window = windows.get(key)
      if (!window || window.endsAt <= time) {
        window = { count: 0, endsAt: time + windowMs }
        windows.set(key, window)
      }
      window.count += 1
      return { count: window.count, resetMs: window.endsAt - time }
    },
    async close() {
      windows.clear()
    },
  }
}

// INCR and start the window on the first hit, atomically: every instance counts into one window.
const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
`

type RedisWithHit = Redis & {
  fastauthHit(key: string, windowMs: number): Promise<[number, number]>
}

/** Counters shared by every instance through Redis. */
export function createRedisCounterStore(redis: Redis, keyPrefix: string): CounterStore {
  // Defining it again (a second store on one connection) replaces it with the same script.
  redis.defineCommand('fastauthHit', { numberOfKeys: 1, lua: HIT_SCRIPT })
  const client = redis as RedisWithHit
  return {
    kind: 'redis',
    async hit(key, windowMs) {
      const [count, ttl] = await client.fastauthHit(`${keyPrefix}rate:${key}`, windowMs)
      return { count, resetMs: ttl }
    },
    async close() {
      // The connection belongs to the redis plugin.
    },
  }
}

/**
 * Redis when it answers; this instance's own counters when it does not. Limits then hold per
 * instance (never "no limit"). The monitor is a circuit breaker: after a failure, hits go
 * straight to the fallback until its background probe finds Redis again, so a Redis that does not
 * answer (each command waits for its timeout) costs one request that wait, not every request.
 */
export function createFallbackCounterStore(
  primary: CounterStore,
  fallback: CounterStore,
  monitor: Pick<DependencyMonitor, 'available' | 'failed'>,
): CounterStore {
  return {
    kind: primary.kind,
    async hit(key, windowMs) {
      if (!monitor.available) return fallback.hit(key, windowMs)
      try {
        return await primary.hit(key, windowMs)
      } catch (error) {
        monitor.failed(error)
        return fallback.hit(key, windowMs)
      }
    },
    async close() {
      await Promise.all([primary.close(), fallback.close()])
    },
  }
}
