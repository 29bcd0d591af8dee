import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { notFound } from '../../services/errors.js'
import { SessionIdParams, SessionList } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'

/** The caller's own sessions (devices where they are logged in); registered authenticated. */
const sessionsRoutes: FastifyPluginAsyncTypebox = async (app) => {
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
      const sessions = await app.repos.sessions.listActive(request.actor.id, new Date())
      reply.header('cache-control', 'no-store')
      return {
        items: sessions.map(({ id, created_at, last_used_at, expires_at, user_agent, ip }) => ({
          id,
          created_at: created_at.toISOString(),
          last_used_at: last_used_at.toISOString(),
          expires_at: expires_at.toISOString(),
          user_agent,
          ip,
          current: id === request.actor.sessionId,
        })),
      }
    },
  )

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
      const session = await app.repos.sessions.findById(request.params.id)
      if (!session || session.user_id !== request.actor.id || session.revoked_at !== null)
        throw notFound('You have no active session with this id.')
      await app.sessions.endSessions(app.repos, [session.id], 'revoked_by_user')
      await app.recordSecurityEvent(request, {
        event: 'session_revoked',
        outcome: 'success',
        userId: request.actor.id,
        sessionId: session.id,
      })
      return reply.code(204).send(null)
    },
  )
}

export default sessionsRoutes
