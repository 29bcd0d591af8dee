import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { HttpProblem } from '../../errors.js'
import {
  createFallbackCounterStore,
  createMemoryCounterStore,
  createRedisCounterStore,
  type CounterStore,
} from '../../rate-limit/counters.js'

/** The attempt-limited actions: each has its own counters, per client IP and per account. */
export type AttemptKind =
  | 'login'
  | 'register'
  | 'refresh'
  | 'password_recovery'
  | 'password_reset'
  | 'verify_email'
  | 'verify_email_resend'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * preHandler for a sensitive route: counts the attempt per client IP and per account (the
     * value `accountOf` names, e.g. the login name) and answers 429 past either limit — before the
     * handler runs, so before any password is hashed. Correct credentials get the 429 too.
     */
    limitAttempts(
      kind: AttemptKind,
      accountOf: (request: FastifyRequest) => string | undefined,
    ): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

function tooManyRequests(retryAfterSeconds: number): HttpProblem {
  return new HttpProblem(429, `Too many requests; try again in ${retryAfterSeconds} seconds.`, {
    headers: { 'retry-after': String(retryAfterSeconds) },
  })
}

/** Sets the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on a reply. */
function setRateLimitHeaders(reply: FastifyReply, limit: number, remaining: number, resetSeconds: number) {
  reply.header('ratelimit-limit', String(limit))
  reply.header('ratelimit-remaining', String(Math.max(0, remaining)))
  reply.header('ratelimit-reset', String(resetSeconds))
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const limits = config.rateLimit
    const memory = createMemoryCounterStore()
    const counters: CounterStore = app.redis
      ? createFallbackCounterStore(createRedisCounterStore(app.redis, config.redisKeyPrefix), memory, {
          onFallback: (error) =>
            app.log.error(
              { err: error },
              'rate limits: Redis does not answer; counting per instance until it does',
            ),
          onRecovered: () => app.log.info('rate limits: Redis answers again; limits are shared again'),
        })
      : memory
    app.addHook('onClose', async () => counters.close())

    if (limits.enabled) {
      // The global per-IP limit, through @fastify/rate-limit with our counters as its store.
      class SharedStore {
        incr(
          key: string,
          callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
        ) {
          counters.hit(`ip:${key}`, limits.windowMs).then(
            ({ count, resetMs }) => callback(null, { current: count, ttl: resetMs }),
            (error: Error) => callback(error),
          )
        }
        child() {
          return this
        }
      }
      await app.register(rateLimit, {
        global: true,
        max: limits.perIp,
        timeWindow: limits.windowMs,
        keyGenerator: (request) => request.ip,
        store: SharedStore,
        enableDraftSpec: true,
        onExceeded: (request) =>
          request.log.warn({ event: 'rate_limited', scope: 'ip' }, 'rate limit reached'),
        errorResponseBuilder: (_request, context) =>
          Object.assign(
            new Error(`Too many requests; try again in ${Math.ceil(context.ttl / 1000)} seconds.`),
            {
              statusCode: 429,
            },
          ),
      })
    }

    app.decorate(
      'limitAttempts',
      (kind: AttemptKind, accountOf: (request: FastifyRequest) => string | undefined) => {
        return async (request: FastifyRequest, reply: FastifyReply) => {
          if (!limits.enabled) return
          const checks: [scope: string, limit: number][] = [
            [`attempt:${kind}:ip:${request.ip}`, limits.attemptsPerIp],
          ]
          const account = accountOf(request)
          if (account !== undefined)
            checks.push([`attempt:${kind}:account:${account}`, limits.attemptsPerAccount])
          const results = await Promise.all(checks.map(([key]) => counters.hit(key, limits.attemptWindowMs)))
          let tightest = { limit: Infinity, remaining: Infinity, resetMs: 0 }
          for (const [index, result] of results.entries()) {
            const limit = checks[index]![1]
            if (limit - result.count < tightest.remaining)
              tightest = { limit, remaining: limit - result.count, resetMs: result.resetMs }
          }
          const resetSeconds = Math.max(1, Math.ceil(tightest.resetMs / 1000))
          setRateLimitHeaders(reply, tightest.limit, tightest.remaining, resetSeconds)
          if (tightest.remaining < 0) {
            request.log.warn({ event: 'rate_limited', scope: kind }, 'too many attempts')
            throw tooManyRequests(resetSeconds)
          }
        }
      },
    )
  },
  { name: 'rate-limit', dependencies: ['redis'] },
)
