import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import type * as IORedis from 'ioredis'
import type { Redis } from 'ioredis'
import { ConfigError, type Config } from '../../config.js'
import {
  createDependencyMonitor,
  describeFailure,
  explainConnectionFailure,
  type DependencyMonitor,
} from '../../dependencies/monitor.js'

/** ioredis, loaded only when REDIS_URL is set (a single instance never needs it). */
const loadRedis = () => (createRequire(import.meta.url)('ioredis') as typeof IORedis).Redis

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection, when REDIS_URL is set. */
    redis: Redis | null
    /**
     * Whether Redis answers (null without REDIS_URL). A circuit breaker: while it is unavailable,
     * callers go straight to their fallback instead of waiting out a command timeout per request,
     * and a background probe finds out when Redis is back.
     */
    redisMonitor: DependencyMonitor | null
  }
}

/** How long a Redis command may take before the caller falls back (a frozen or half-open link). */
const COMMAND_TIMEOUT_MS = 1000
/** How long the server waits for Redis at start before it gives up with one line. */
const STARTUP_WAIT_MS = 5000

/** The Redis address of a URL, without credentials, for messages. */
function redisAddress(url: string): string {
  const parsed = new URL(url)
  return `${parsed.hostname}:${parsed.port || 6379}`
}

/** A Redis connection failure in words a person can act on. */
function explainRedisFailure(error: unknown): string {
  const message = describeFailure(error)
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(message))
    return `authentication failed (${message}); check the user and password in REDIS_URL`
  return explainConnectionFailure(error)
}

/**
 * A connection that is ready, or a ConfigError saying why Redis cannot be reached. Commands fail
 * fast while Redis is away (no offline queue) or does not answer (command timeout), so callers can
 * fall back instead of hanging.
 */
async function connectRedis(redisUrl: string): Promise<Redis> {
  const Redis = loadRedis()
  const redis = new Redis(redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A Redis that accepts commands but does not answer (frozen, a half-open connection) must
    // not hold requests: the command fails and the caller falls back (e.g. to the database).
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  })

  // Until the server is up, the last connection error is kept to say why Redis cannot be reached.
  let lastStartupError: unknown
  const onStartupError = (error: unknown) => {
    lastStartupError = error
  }
  redis.on('error', onStartupError)
  try {
    await readyWithin(redis, STARTUP_WAIT_MS)
  } catch (error) {
    redis.disconnect()
    const reason =
      lastStartupError === undefined ? (error as Error).message : explainRedisFailure(lastStartupError)
    throw new ConfigError(
      `REDIS_URL: cannot reach Redis at ${redisAddress(redisUrl)} (${reason}); check that it is running and that REDIS_URL is right`,
    )
  } finally {
    redis.off('error', onStartupError)
  }
  return redis
}

/** Resolves when the connection is ready; rejects when it ends first or after `waitMs`. */
function readyWithin(redis: Redis, waitMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${waitMs / 1000} s`)), waitMs)
    timer.unref()
    redis.once('ready', () => {
      clearTimeout(timer)
      resolve()
    })
    redis.once('end', () => {
      clearTimeout(timer)
      reject(new Error('the connection ended'))
    })
  })
}

/**
 * One Redis connection for the instance's shared state (revocations, rate limits), and its
 * monitor, which keeps callers from trying while Redis is away and finds out when it is back.
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    if (!config.redisUrl) {
      app.decorate('redis', null)
      app.decorate('redisMonitor', null)
      return
    }
    const redis = await connectRedis(config.redisUrl)
    const monitor = createDependencyMonitor({
      name: 'redis',
      log: app.log,
      probe: () => redis.ping(),
      meanwhile:
        'rate limits count per instance, and revocations reach other instances through the database (within 1 s)',
      onFailure: () => app.metrics.dependencyFailure('redis'),
      onChange: (available) => app.metrics.dependencyAvailable('redis', available),
    })
    app.metrics.dependencyAvailable('redis', true)
    // ioredis repeats the same error on every reconnection attempt: the monitor says it once.
    redis.on('error', (error: Error) => monitor.failed(error))
    redis.on('ready', () => monitor.succeeded())

    app.decorate('redis', redis)
    app.decorate('redisMonitor', monitor)
    app.addHook('onClose', async () => {
      monitor.close()
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'redis', dependencies: ['metrics'] },
)
