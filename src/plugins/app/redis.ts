import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import type * as IORedis from 'ioredis'
import type { Redis } from 'ioredis'
import { ConfigError, type Config } from '../../config.js'

/** ioredis, loaded only when REDIS_URL is set (a single instance never needs it). */
const loadRedis = () => (createRequire(import.meta.url)('ioredis') as typeof IORedis).Redis

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection, when REDIS_URL is set. */
    redis: Redis | null
  }
}

/**
 * One Redis connection for the instance's shared state (revocations, rate limits). Commands fail
 * fast while Redis is away (no offline queue) or does not answer (command timeout), so callers can
 * fall back instead of hanging.
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    if (!config.redisUrl) {
      app.decorate('redis', null)
      return
    }
    const Redis = loadRedis()
    const redis = new Redis(config.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      // A Redis that accepts commands but does not answer (frozen, a half-open connection) must
      // not hold requests: the command fails and the caller falls back (e.g. to the database).
      commandTimeout: 1000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    })
    let reported = false
    redis.on('error', (error: Error) => {
      // ioredis repeats the same error on every reconnection attempt: say it once per outage.
      if (!reported) app.log.warn({ err: error }, 'Redis is not reachable; retrying')
      reported = true
    })
    redis.on('ready', () => {
      if (reported) app.log.info('Redis is reachable again')
      reported = false
    })
    try {
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve)
        redis.once('end', () => reject(new Error('connection ended')))
        setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()
      })
    } catch (error) {
      redis.disconnect()
      throw new ConfigError(
        `REDIS_URL: cannot reach Redis (${(error as Error).message}); check that it is running`,
      )
    }
    app.decorate('redis', redis)
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect())
    })
  },
  { name: 'redis' },
)
