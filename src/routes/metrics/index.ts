import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../../config.js'
import { HttpProblem } from '../../http/problems.js'

const BEARER = /^Bearer +(\S+) *$/i
const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()

/**
 * GET /metrics (Prometheus text format), only when METRICS_TOKEN is set and only to a scraper that
 * sends it as a bearer token; without METRICS_TOKEN there is no such route (404). Not an API
 * operation, so not in the OpenAPI document.
 */
export default async function metricsRoutes(app: FastifyInstance, { config }: { config: Config }) {
  if (!config.metricsToken) return
  // Both sides are hashed first, so that the comparison takes the same time whatever the length.
  const expected = digest(config.metricsToken)

  const requireMetricsToken = async (request: FastifyRequest) => {
    const presented = BEARER.exec(request.headers.authorization ?? '')?.[1] ?? ''
    if (!timingSafeEqual(digest(presented), expected))
      throw new HttpProblem(401, 'GET /metrics needs "Authorization: Bearer <METRICS_TOKEN>".', {
        headers: { 'www-authenticate': 'Bearer realm="metrics"' },
      })
  }

  app.get('/metrics', { onRequest: requireMetricsToken, schema: { hide: true } }, async (_request, reply) => {
    const body = await app.metrics.scrape()
    return reply.header('cache-control', 'no-store').type(app.metrics.contentType).send(body)
  })
}
