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
        summary: 'The database (and Redis, when configured) answers',
        response: { 200: Status, ...problemResponses(503) },
      },
    },
    async () => {
      try {
        await sql`select 1`.execute(app.db)
      } catch (error) {
        app.log.warn({ err: error }, 'readiness check: the database does not answer')
        throw new HttpProblem(503, 'The database does not answer.', { headers: { 'retry-after': '5' } })
      }
      // With REDIS_URL, shared state lives there: without it this instance runs degraded (limits
      // per instance, revocation checks against the database), so it says it is not ready.
      if (app.redis) {
        try {
          await app.redis.ping()
        } catch (error) {
          app.log.warn({ err: error }, 'readiness check: Redis does not answer')
          throw new HttpProblem(503, 'Redis does not answer.', { headers: { 'retry-after': '5' } })
        }
      }
      return { status: 'ok' }
    },
  )
}
