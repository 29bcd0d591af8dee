import { Type } from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.js'
import { shuttingDown } from '../../http/refusals.js'
import { problemResponses } from '../../schemas/problem.js'
import { createReadinessCheck, type ReadinessStep } from './readiness.js'

const Status = Type.Object({ status: Type.String({ examples: ['ok'] }) }, { additionalProperties: false })

export default async function healthRoutes(app: FastifyInstance, { config }: { config: Config }) {
  app.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'The process is alive', response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  )

  const database: ReadinessStep = {
    what: 'the database',
    monitor: app.dbMonitor,
    run: () => app.repos.readinessProbe.ping(),
  }
  // A database that answers reads may still refuse every write (a full disk, a read-only file or
  // server): this instance could then serve no change, so it is not ready. One real commit.
  const databaseWrites: ReadinessStep = {
    what: 'the database',
    refusal: 'The database cannot store data.',
    monitor: app.dbMonitor,
    run: () => app.repos.readinessProbe.write(new Date()),
  }
  // With REDIS_URL, shared state lives there: without it this instance runs degraded (limits per
  // instance, revocations from its own list), so it says it is not ready.
  const redis: ReadinessStep = {
    what: 'Redis',
    monitor: app.redisMonitor ?? undefined,
    run: async () => {
      await app.redis?.ping()
    },
  }
  const checkDependencies = createReadinessCheck(
    app.redis ? [database, databaseWrites, redis] : [database, databaseWrites],
    config.readinessTimeoutMs,
    app.log,
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
      // 1. Shutting down: balancers take this instance out before it stops listening.
      if (app.lifecycle.phase !== 'serving') throw shuttingDown('The server is shutting down.')
      // 2. The dependencies, each in turn, all within READINESS_TIMEOUT_MS.
      await checkDependencies()
      return { status: 'ok' }
    },
  )
}
