import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import type { Clock } from '../../services/clock.js'
import { clientKey } from '../../rate-limit/client-key.js'
import {
  createFallbackCounterStore,
  createMemoryCounterStore,
  createRedisCounterStore,
  type CounterStore,
} from '../../rate-limit/counters.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  attemptRefused,
  createAttemptLimits,
  type AttemptKind,
  type AttemptLimits,
} from '../../services/attempts.js'
import { tooManyAttempts, type DomainError } from '../../services/errors.js'
import { routeLabel } from './metrics.js'

export type { AttemptKind } from '../../services/attempts.js'

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
    /**
     * The attempt limits themselves, for a rule that learns the account only from what it reads
     * (services/attempts.ts `limitAttempt`): the same counters as limitAttempts.
     */
    attemptLimits: AttemptLimits
  }
}

type Limits = Config['rateLimit']
/** Counts and logs a refusal; `first` when it is the first of its window (the only warning). */
type Refused = (request: FastifyRequest, scope: string, first: boolean) => void

/** The global limit's 429: every request from one address counts. */
function tooManyRequests(retryAfterSeconds: number): DomainError {
  return tooManyAttempts(
    `Too many requests from this address; try again in ${retryAfterSeconds} seconds.`,
    retryAfterSeconds,
  )
}

/** Sets the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on a reply. */
function setRateLimitHeaders(reply: FastifyReply, limit: number, remaining: number, resetSeconds: number) {
  reply.header('ratelimit-limit', String(limit))
  reply.header('ratelimit-remaining', String(Math.max(0, remaining)))
  reply.header('ratelimit-reset', String(resetSeconds))
}

/** Redis shared by every instance, with this instance's counters while it does not answer; or memory. */
function countersOf(app: FastifyInstance, config: Config): CounterStore {
  const memory = createMemoryCounterStore(() => app.clock.now())
  return app.redis && app.redisMonitor
    ? createFallbackCounterStore(
        createRedisCounterStore(app.redis, config.redisKeyPrefix),
        memory,
        app.redisMonitor,
      )
    : memory
}

/**
 * Every refusal is counted by route template, and as a security event. Only the first of a
 * window is a warning: a flood must not flood the log as well.
 */
function refusalReporter(app: FastifyInstance): Refused {
  return (request, scope, first) => {
    app.metrics.rateLimited(routeLabel(request))
    app.metrics.authEvent('rate_limited')
    request.log[first ? 'warn' : 'debug']({ event: 'rate_limited', scope }, 'rate limit reached')
  }
}

/** Whether a key of the global limit is reported for the first time in its current window (this instance). */
function firstReports(windowMs: number, clock: Clock) {
  const reported = new Map<string, number>()
  return (key: string) => {
    const now = clock.now()
    if ((reported.get(key) ?? 0) > now) return false
    // Bounded: past 10,000 addresses reported in one window, some are simply reported again.
    if (reported.size >= 10_000) reported.clear()
    reported.set(key, now + windowMs)
    return true
  }
}

/** Our counters as a store of @fastify/rate-limit, keys in their own `ip:` space. */
function sharedStoreOf(counters: CounterStore, windowMs: number) {
  return class SharedStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void) {
      counters.hit(`ip:${key}`, windowMs).then(
        ({ count, resetMs }) => callback(null, { current: count, ttl: resetMs }),
        (error: Error) => callback(error),
      )
    }
    child() {
      return this
    }
  }
}

/** The global per-IP limit, through @fastify/rate-limit with our counters as its store. */
async function limitEveryRequest(
  app: FastifyInstance,
  limits: Limits,
  counters: CounterStore,
  refused: Refused,
) {
  // Routes declare the 429 they may answer (OpenAPI), with the Problem body.
  app.addHook('onRoute', (route: RouteOptions) => {
    const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response
    if (response && !('429' in response) && !(429 in response)) Object.assign(response, problemResponses(429))
  })
  const firstReport = firstReports(limits.windowMs, app.clock)
  await app.register(rateLimit, {
    // Not per route: one root onRequest hook (below), so that it runs before any other hook
    // of a route (authentication included) and also covers requests that match no route.
    global: false,
    max: limits.perIp,
    timeWindow: limits.windowMs,
    keyGenerator: (request) => clientKey(request.ip),
    store: sharedStoreOf(counters, limits.windowMs),
    enableDraftSpec: true,
    onExceeded: (request, key) => refused(request, 'ip', firstReport(key)),
    // Thrown: our error handler makes it application/problem+json (the plugin has already
    // set Retry-After and the RateLimit-* headers on the reply).
    errorResponseBuilder: (_request, context) => tooManyRequests(Math.max(1, Math.ceil(context.ttl / 1000))),
  })
  app.addHook('onRequest', app.rateLimit())
}

/** The preHandler of app.limitAttempts: the attempt limits answer, this sets the headers (or refuses). */
function attemptLimiter(attempts: AttemptLimits, refused: Refused) {
  return (kind: AttemptKind, accountOfBody: (request: FastifyRequest<{ Body: never }>) => unknown) => {
    // The route's schema has validated the body by the time a preHandler runs.
    const accountOf = accountOfBody as (request: FastifyRequest) => string | number | undefined
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const client = { ip: request.ip, log: request.log }
      const verdict = await attempts.count(client, kind, accountOf(request))
      if (!verdict) return
      if (verdict.refused) {
        setRateLimitHeaders(reply, verdict.limit, 0, verdict.resetSeconds)
        refused(request, kind, verdict.firstRefusal)
        throw attemptRefused(kind, verdict)
      }
      // The headers tell the tighter of this limit and the global one (already set on the reply).
      const globalRemaining = Number(reply.getHeader('ratelimit-remaining'))
      if (!(Number.isFinite(globalRemaining) && globalRemaining < verdict.remaining))
        setRateLimitHeaders(reply, verdict.limit, verdict.remaining, verdict.resetSeconds)
    }
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const limits = config.rateLimit
    const counters = countersOf(app, config)
    app.decorate('rateLimitCounters', counters)
    app.addHook('onClose', async () => counters.close())
    const refused = refusalReporter(app)
    if (limits.enabled) await limitEveryRequest(app, limits, counters, refused)
    const attempts = createAttemptLimits({ limits, counters, count: (event) => app.metrics.authEvent(event) })
    app.decorate('attemptLimits', attempts)
    app.decorate('limitAttempts', attemptLimiter(attempts, refused))
  },
  { name: 'rate-limit', dependencies: ['redis', 'metrics'] },
)
