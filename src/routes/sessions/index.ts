import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { contextOf } from '../../http/context.js'
import { SessionIdParams, SessionList } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'
import type { TypedApp } from '../../http/typed-app.js'

/** The caller's own sessions (devices where they are logged in); registered authenticated. */
const sessionsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  registerList(app)
  registerEnd(app)
}

function registerList(app: TypedApp) {
  app.get(
    '/sessions',
    {
      schema: {
        tags: ['auth'],
        summary: 'Your active sessions',
        response: { 200: SessionList },
      },
    },
    async (request, reply) => {
      const sessions = await app.sessions.listOwnSessions(contextOf(request))
      reply.header('cache-control', 'no-store')
      return {
        items: sessions.map(({ id, created_at, last_used_at, expires_at, user_agent, ip, current }) => ({
          id,
          created_at: created_at.toISOString(),
          last_used_at: last_used_at.toISOString(),
          expires_at: expires_at.toISOString(),
          user_agent,
          ip,
          current,
        })),
      }
    },
  )
}

function registerEnd(app: TypedApp) {
  app.delete(
    '/sessions/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'End one of your sessions',
        description:
          'Its tokens stop working at once. Another user’s session is a 404, as if it did not exist.',
        params: SessionIdParams,
        response: { 204: Type.Null({ description: 'Ended' }), ...problemResponses(404, 422) },
      },
    },
    async (request, reply) => {
      await app.sessions.endOwnSession(contextOf(request), request.params.id)
      return reply.code(204).send(null)
    },
  )
}

export default sessionsRoutes
