import { createHash } from 'node:crypto'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { clientKey } from '../../rate-limit/client-key.js'
import {
  createFallbackCounterStore,
  createMemoryCounterStore,
  createRedisCounterStore,
  type CounterStore,
} from '../../rate-limit/counters.js'
import { problemResponses } from '../../schemas/problem.js'
import { routeLabel } from './metrics.js'
import { tooManyAttempts, type DomainError } from '../../services/errors.js'

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
     * `Body` types `request.body` for `accountOf` (the route's schema has validated it by then).
     */
    limitAttempts<Body = unknown>(
      kind: AttemptKind,
      accountOf: (request: FastifyRequest<{ Body: Body }>) => string | number | undefined,
    ): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** The counters behind every limit (Redis with a per-instance fallback, or memory). */
    rateLimitCounters: CounterStore
  }
}

function tooManyRequests(retryAfterSeconds: number): DomainError {
  return tooManyAttempts(`Too many requests; try again in ${retryAfterSeconds} seconds.`, retryAfterSeconds)
}

/** Sets the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on a reply. */
function setRateLimitHeaders(reply: FastifyReply, limit: number, remaining: number, resetSeconds: number) {
  reply.header('ratelimit-limit', String(limit))
  reply.header('ratelimit-remaining', String(Math.max(0, remaining)))
  reply.header('ratelimit-reset', String(resetSeconds))
}

/** Accounts are counted under a digest: no email addresses or user names in Redis keys. */
const accountKey = (account: string | number) =>
  createHash('sha256').update(String(account), 'utf8').digest('base64url').slice(0, 32)

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const limits = config.rateLimit
    const memory = createMemoryCounterStore()
    const counters: CounterStore =
      app.redis && app.redisMonitor
        ? createFallbackCounterStore(
            createRedisCounterStore(app.redis, config.redisKeyPrefix),
            memory,
            app.redisMonitor,
          )
        : memory
    app.decorate('rateLimitCounters', counters)
    app.addHook('onClose', async () => counters.close())

    /**
     * Every refusal is counted by route template, and as a security event. Only the first of a
     * window is a warning: a flood must not flood the log as well.
     */
    const refused = (request: FastifyRequest, scope: string, first: boolean) => {
      app.metrics.rateLimited(routeLabel(request))
      app.metrics.authEvent('rate_limited')
      request.log[first ? 'warn' : 'debug']({ event: 'rate_limited', scope }, 'rate limit reached')
    }
    /** The keys of the global limit already reported in their current window (this instance). */
    const reported = new Map<string, number>()
    const firstReport = (key: string) => {
      const now = Date.now()
      if ((reported.get(key) ?? 0) > now) return false
      // Bounded: past 10,000 addresses reported in one window, some are simply reported again.
      if (reported.size >= 10_000) reported.clear()
      reported.set(key, now + limits.windowMs)
      return true
    }

    if (limits.enabled) {
      // Routes declare the 429 they may answer (OpenAPI), with the Problem body.
      app.addHook('onRoute', (route: RouteOptions) => {
        const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response
        if (response && !('429' in response) && !(429 in response))
          Object.assign(response, problemResponses(429))
      })

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
        // Not per route: one root onRequest hook (below), so that it runs before any other hook
        // of a route (authentication included) and also covers requests that match no route.
        global: false,
        max: limits.perIp,
        timeWindow: limits.windowMs,
        keyGenerator: (request) => clientKey(request.ip),
        store: SharedStore,
        enableDraftSpec: true,
        onExceeded: (request, key) => refused(request, 'ip', firstReport(key)),
        // Thrown: our error handler makes it application/problem+json (the plugin has already
        // set Retry-After and the RateLimit-* headers on the reply).
        errorResponseBuilder: (_request, context) =>
          tooManyRequests(Math.max(1, Math.ceil(context.ttl / 1000))),
      })
      app.addHook('onRequest', app.rateLimit())
    }

    app.decorate(
      'limitAttempts',
      (kind: AttemptKind, accountOfBody: (request: FastifyRequest<{ Body: never }>) => unknown) => {
        // The route's schema has validated the body by the time a preHandler runs.
        const accountOf = accountOfBody as (request: FastifyRequest) => string | number | undefined
        return async (request: FastifyRequest, reply: FastifyReply) => {
          if (!limits.enabled) return
          const checks: [key: string, limit: number, scope: 'ip' | 'account'][] = [
            [`attempt:${kind}:ip:${clientKey(request.ip)}`, limits.attemptsPerIp, 'ip'],
          ]
          const account = accountOf(request)
          if (account !== undefined && account !== '')
            checks.push([
              `attempt:${kind}:account:${accountKey(account)}`,
              limits.attemptsPerAccount,
              'account',
            ])
          // Every attempt counts, allowed or not: a block lasts until its window ends.
          const results = await Promise.all(checks.map(([key]) => counters.hit(key, limits.attemptWindowMs)))
          let tightest = { limit: Infinity, remaining: Infinity, resetMs: 0 }
          for (const [index, result] of results.entries()) {
            const [, limit, scope] = checks[index]!
            if (limit - result.count < tightest.remaining)
              tightest = { limit, remaining: limit - result.count, resetMs: result.resetMs }
            if (scope === 'account' && result.count === limit + 1) {
              // The first refused attempt on this account in this window: a lockout, said once.
              app.metrics.authEvent('lockout')
              request.log.warn({ event: 'lockout', kind }, 'too many attempts on one account')
            }
          }
          const resetSeconds = Math.max(1, Math.ceil(tightest.resetMs / 1000))
          if (tightest.remaining < 0) {
            setRateLimitHeaders(reply, tightest.limit, 0, resetSeconds)
            const first = results.some((result, index) => result.count === checks[index]![1] + 1)
            refused(request, kind, first)
            throw tooManyRequests(resetSeconds)
          }
          // The headers tell the tighter of this limit and the global one (already set on the reply).
          const globalRemaining = Number(reply.getHeader('ratelimit-remaining'))
          if (!(Number.isFinite(globalRemaining) && globalRemaining < tightest.remaining))
            setRateLimitHeaders(reply, tightest.limit, tightest.remaining, resetSeconds)
        }
      },
    )
  },
  { name: 'rate-limit', dependencies: ['redis', 'metrics'] },
)
