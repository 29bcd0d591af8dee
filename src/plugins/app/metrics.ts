import fp from 'fastify-plugin'
import type { DatabaseHandle } from '../../db/open.js'
import { createMetrics, type Metrics } from '../../http/metrics.js'

// Where rate-limit.ts and the tests have always found them.
export { poolState, routeLabel } from '../../http/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export interface MetricsPluginOptions {
  /**
   * The database: its connection pool is read at each scrape when the handle exposes it as
   * `pool` (the pg.Pool or mysql2 pool that its Kysely dialect uses).
   */
  database: DatabaseHandle
}

/**
 * Prometheus metrics of this app: HTTP requests by route template, method and status, their
 * latency, security events, rate-limit refusals, the database pool and the process. Served by
 * routes/metrics (only with METRICS_TOKEN).
 */
export default fp<MetricsPluginOptions>(
  async (app, { database }) => {
    const { metrics, recordResponse } = createMetrics((database as DatabaseHandle & { pool?: unknown }).pool)
    app.addHook('onResponse', async (request, reply) => recordResponse(request, reply))
    app.decorate('metrics', metrics)
  },
  // Before the database and Redis plugins, which report their outages here.
  { name: 'metrics' },
)
