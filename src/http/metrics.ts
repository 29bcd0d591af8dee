import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { passwordHashing } from '../auth/passwords.js'
import { AUTH_EVENTS, type AuthEvent } from '../services/audit.js'

/** The `route` label of requests that matched no route (so that scanners cannot add series). */
export const UNMATCHED_ROUTE = 'unmatched'

/** Latency buckets (seconds): fast reads in milliseconds up to password hashing and slow queries. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export interface PoolState {
  /** Open connections, in use or idle. */
  total: number
  idle: number
  /** Requests waiting for a connection. */
  waiting: number
  /** The most connections the pool opens, when the driver says. */
  max: number | undefined
}

export interface Metrics {
  /** This app's own registry (never prom-client's global one: several apps may share a process). */
  readonly registry: Registry
  /** The content type of `scrape()`: the Prometheus text format 0.0.4. */
  readonly contentType: string
  /** Counts one security event in `auth_events_total{event}`. */
  authEvent(event: AuthEvent): void
  /** Counts one request refused by a rate limit, by route template (see `routeLabel`). */
  rateLimited(route: string | undefined): void
  /** Counts one failed call to a dependency ("database", "redis") in `dependency_failures_total`. */
  dependencyFailure(dependency: string): void
  /** Sets `dependency_up{dependency}`: 1 while it answers, 0 during an outage. */
  dependencyAvailable(dependency: string, available: boolean): void
  /** The exposition text of every metric of this app. */
  scrape(): Promise<string>
}

/** The route template of a request (`/product/:id`, never `/product/1`), or "unmatched". */
export function routeLabel(request: FastifyRequest): string {
  if (request.is404) return UNMATCHED_ROUTE
  return request.routeOptions.url ?? UNMATCHED_ROUTE
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)
const lengthOf = (value: unknown): unknown => (value as { length?: unknown } | null | undefined)?.length

/**
 * Reads the state of a driver's connection pool: a pg.Pool (public counters) or a mysql2 pool
 * (its connection queues). Anything else, SQLite included, has no pool: undefined.
 */
export function poolState(pool: unknown): PoolState | undefined {
  if (pool === null || typeof pool !== 'object') return undefined
  const pg = pool as {
    totalCount?: unknown
    idleCount?: unknown
    waitingCount?: unknown
    options?: { max?: unknown }
  }
  if (isCount(pg.totalCount) && isCount(pg.idleCount) && isCount(pg.waitingCount)) {
    const max = pg.options?.max
    return {
      total: pg.totalCount,
      idle: pg.idleCount,
      waiting: pg.waitingCount,
      max: isCount(max) ? max : undefined,
    }
  }
  const mysql = pool as {
    _allConnections?: unknown
    _freeConnections?: unknown
    _connectionQueue?: unknown
    config?: { connectionLimit?: unknown }
  }
  const total = lengthOf(mysql._allConnections)
  const idle = lengthOf(mysql._freeConnections)
  const waiting = lengthOf(mysql._connectionQueue)
  if (isCount(total) && isCount(idle) && isCount(waiting)) {
    const max = mysql.config?.connectionLimit
    return { total, idle, waiting, max: isCount(max) ? max : undefined }
  }
  return undefined
}

/** The metrics of one app, and what feeds the request metrics. */
export interface AppMetrics {
  metrics: Metrics
  /** Counts an answered request and observes its latency, by route template, method and status. */
  recordResponse(request: FastifyRequest, reply: FastifyReply): void
}

/**
 * Prometheus metrics of one app: HTTP requests by route template, method and status, their
 * latency, security events, rate-limit refusals, dependencies, the database pool (when `pool` is
 * one, see poolState) and the process.
 */
export function createMetrics(pool: unknown): AppMetrics {
  const registry = new Registry()
  const registers = [registry]
  collectDefaultMetrics({ register: registry })
  const recordResponse = createRequestMetrics(registers)
  const events = createEventMetrics(registers)
  if (poolState(pool)) createPoolGauges(pool, registers)
  createPasswordHashingMetrics(registers)
  return {
    recordResponse,
    metrics: {
      registry,
      contentType: registry.contentType,
      ...events,
      scrape: () => registry.metrics(),
    },
  }
}

function createRequestMetrics(registers: Registry[]): AppMetrics['recordResponse'] {
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  })
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving a request to having sent its response, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  })
  return (request, reply) => {
    const labels = { method: request.method, route: routeLabel(request), status: String(reply.statusCode) }
    requests.inc(labels)
    durations.observe(labels, reply.elapsedTime / 1000)
  }
}

/** Security events, rate-limit refusals and the state of the dependencies. */
function createEventMetrics(
  registers: Registry[],
): Pick<Metrics, 'authEvent' | 'rateLimited' | 'dependencyFailure' | 'dependencyAvailable'> {
  const authEvents = new Counter({
    name: 'auth_events_total',
    help: 'Security events: logins, refresh token reuse, password changes, lockouts, …',
    labelNames: ['event'] as const,
    registers,
  })
  for (const event of AUTH_EVENTS) authEvents.inc({ event }, 0)
  const rateLimitHits = new Counter({
    name: 'rate_limit_hits_total',
    help: 'Requests refused (429) by a rate limit, by route template.',
    labelNames: ['route'] as const,
    registers,
  })
  const dependencyFailures = new Counter({
    name: 'dependency_failures_total',
    help: 'Calls to a dependency (database, redis) that failed because it was unreachable or did not answer in time.',
    labelNames: ['dependency'] as const,
    registers,
  })
  const dependencyUp = new Gauge({
    name: 'dependency_up',
    help: 'Whether a dependency (database, redis) answers, as this instance sees it: 1 yes, 0 during an outage.',
    labelNames: ['dependency'] as const,
    registers,
  })
  return {
    authEvent: (event: AuthEvent) => authEvents.inc({ event }),
    rateLimited: (route: string | undefined) => rateLimitHits.inc({ route: route ?? UNMATCHED_ROUTE }),
    dependencyFailure: (dependency: string) => dependencyFailures.inc({ dependency }),
    dependencyAvailable: (dependency: string, available: boolean) =>
      dependencyUp.set({ dependency }, available ? 1 : 0),
  }
}

/** The argon2id work of this process, read at each scrape. */
function createPasswordHashingMetrics(registers: Registry[]) {
  new Counter({
    name: 'password_hashes_total',
    help: 'argon2id computations completed by this process: "hash" (new passwords) and "verify" (logins, password checks, and unknown accounts, which cost one as well).',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      const work = passwordHashing()
      this.reset()
      this.inc({ kind: 'hash' }, work.hash)
      this.inc({ kind: 'verify' }, work.verify)
    },
  })
  new Gauge({
    name: 'password_hashing',
    help: 'argon2id computations running now ("running", bounded by the cores) and waiting for a slot ("waiting": a login storm queues here).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const work = passwordHashing()
      this.set({ state: 'running' }, work.running)
      this.set({ state: 'waiting' }, work.waiting)
    },
  })
}

/** The pool's connections, read at each scrape. */
function createPoolGauges(pool: unknown, registers: Registry[]) {
  new Gauge({
    name: 'db_pool_connections',
    help: 'Database connections of this instance: total open, idle, and requests waiting for one.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const state = poolState(pool)
      if (!state) return
      this.set({ state: 'total' }, state.total)
      this.set({ state: 'idle' }, state.idle)
      this.set({ state: 'waiting' }, state.waiting)
    },
  })
  new Gauge({
    name: 'db_pool_max_connections',
    help: 'The most connections the pool opens (pool_size of DATABASE_URL).',
    registers,
    collect() {
      const max = poolState(pool)?.max
      if (max !== undefined) this.set(max)
    },
  })
}
