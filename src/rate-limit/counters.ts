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
  /** Takes one hit back from a key's current window (an attempt that turned out not to count). */
  takeBack(key: string): Promise<void>
  /** Ends a key's window: its next hit counts from one again. */
  reset(key: string): Promise<void>
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
    async takeBack(key) {
      // A window that has ended may be taken from too: its next hit starts a new one anyway.
      const window = windows.get(key)
      if (window && window.count > 0) window.count -= 1
    },
    async reset(key) {
      windows.delete(key)
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

// DECR only a window that exists (DECR alone would make a key without expiry), never below zero.
const TAKE_BACK_SCRIPT = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return 0
`

type RedisWithHit = Redis & {
  fastauthHit(key: string, windowMs: number): Promise<[number, number]>
  fastauthTakeBack(key: string): Promise<number>
}

/** Counters shared by every instance through Redis. */
export function createRedisCounterStore(redis: Redis, keyPrefix: string): CounterStore {
  // Defining it again (a second store on one connection) replaces it with the same script.
  redis.defineCommand('fastauthHit', { numberOfKeys: 1, lua: HIT_SCRIPT })
  redis.defineCommand('fastauthTakeBack', { numberOfKeys: 1, lua: TAKE_BACK_SCRIPT })
  const client = redis as RedisWithHit
  const keyOf = (key: string) => `${keyPrefix}rate:${key}`
  return {
    kind: 'redis',
    async hit(key, windowMs) {
      const [count, ttl] = await client.fastauthHit(keyOf(key), windowMs)
      return { count, resetMs: ttl }
    },
    async takeBack(key) {
      await client.fastauthTakeBack(keyOf(key))
    },
    async reset(key) {
      await client.del(keyOf(key))
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
  const either = async <T>(work: (store: CounterStore) => Promise<T>): Promise<T> => {
    if (!monitor.available) return work(fallback)
    try {
      return await work(primary)
    } catch (error) {
      monitor.failed(error)
      return work(fallback)
    }
  }
  return {
    kind: primary.kind,
    hit: (key, windowMs) => either((store) => store.hit(key, windowMs)),
    takeBack: (key) => either((store) => store.takeBack(key)),
    reset: (key) => either((store) => store.reset(key)),
    async close() {
      await Promise.all([primary.close(), fallback.close()])
    },
  }
}
