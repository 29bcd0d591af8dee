import { sql } from 'kysely'
import { Type } from 'typebox'
import type { FastifyInstance } from 'fastify'
import { HttpProblem } from '../../errors.js'
import { problemResponses } from '../../schemas/problem.js'

const Status = Type.Object({ status: Type.String({ examples: ['ok'] }) }, { additionalProperties: false })

export default async function healthRoutes(app: FastifyInstance) {
  app.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'The process is alive', response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'The database answers and stores a change (and Redis, when configured, answers)',
        response: { 200: Status, ...problemResponses(503) },
      },
    },
    async () => {
      try {
        await sql`select 1`.execute(app.db)
      } catch (error) {
        // Logged once per outage by the monitor, not once per probe of the load balancer.
        app.dbMonitor.failed(error)
        throw new HttpProblem(503, 'The database does not answer.', { headers: { 'retry-after': '5' } })
      }
      // A database that answers reads may still refuse every write (a full disk, a read-only file
      // or server): this instance could then serve no change, so it is not ready. One real commit.
      try {
        await app.repos.readinessProbe.write(new Date())
      } catch (error) {
        app.dbMonitor.failed(error)
        throw new HttpProblem(503, 'The database cannot store data.', { headers: { 'retry-after': '5' } })
      }
      // With REDIS_URL, shared state lives there: without it this instance runs degraded (limits
      // per instance, revocation checks against the database), so it says it is not ready.
      if (app.redis && app.redisMonitor) {
        const redisDown = () =>
          new HttpProblem(503, 'Redis does not answer.', { headers: { 'retry-after': '5' } })
        // The breaker is open: its probe is already asking; no need to wait for a command timeout.
        if (!app.redisMonitor.available) throw redisDown()
        try {
          await app.redis.ping()
        } catch (error) {
          app.redisMonitor.failed(error)
          throw redisDown()
        }
      }
      return { status: 'ok' }
    },
  )
}
