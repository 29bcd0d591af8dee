import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { assertPasswordPolicy } from '../../auth/accounts.js'
import { hashPassword, verifyPassword } from '../../auth/passwords.js'
import type { Config } from '../../config.js'
import { accountGone, invalidInput } from '../../services/errors.js'
import { bearerSecurity } from '../../http/openapi.js'
import { PasswordChange } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'

const changePasswordRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.put(
    '/users/me/password',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['users'],
        summary: 'Change your password',
        description: 'Needs the current password. Every other session is ended; this one goes on.',
        security: bearerSecurity,
        body: PasswordChange,
        response: { 204: Type.Null({ description: 'Changed' }), ...problemResponses(401, 415, 422) },
      },
    },
    async (request, reply) => {
      const { current_password: currentPassword, new_password: newPassword } = request.body
      assertPasswordPolicy(newPassword, config.passwordMinLength, 'new_password')
      const userId = request.actor.id
      const storedHash = await app.repos.users.findPasswordHash(userId)
      if (storedHash === undefined) throw accountGone()
      if (!(await verifyPassword(storedHash, currentPassword))) {
        // A valid token without the password: perhaps a stolen token trying to take the account.
        await app.recordSecurityEvent(request, {
          event: 'password_change_failed',
          outcome: 'failure',
          userId,
          details: { reason: 'wrong_current_password' },
        })
        throw invalidInput('The current password is not right.', [
          { in: 'body', field: 'current_password', message: 'is not your current password' },
        ])
      }
      const passwordHash = await hashPassword(newPassword)
      await app.transaction(async (repos) => {
        await repos.users.update(userId, { password_hash: passwordHash, updated_at: new Date() })
        await app.sessions.endAllSessionsOf(repos, userId, 'password_changed', request.actor.sessionId)
        await app.recordSecurityEvent(
          request,
          { event: 'password_changed', outcome: 'success', userId },
          repos,
        )
      })
      return reply.code(204).send(null)
    },
  )
}

export default changePasswordRoutes
