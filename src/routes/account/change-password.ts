import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../../config.js'
import { authenticated } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import { PasswordChange } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'

/** Registered authenticated (below): the caller changes their own password. */
const changePasswordRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.put(
    '/users/me/password',
    {
      schema: {
        tags: ['users'],
        summary: 'Change your password',
        description: 'Needs the current password. Every other session is ended; this one goes on.',
        body: PasswordChange,
        response: { 204: Type.Null({ description: 'Changed' }), ...problemResponses(415, 422) },
      },
    },
    async (request, reply) => {
      const { current_password: currentPassword, new_password: newPassword } = request.body
      await app.accounts.passwords.change(contextOf(request), { currentPassword, newPassword })
      return reply.code(204).send(null)
    },
  )
}

const changePasswordRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  await app.register(authenticated(changePasswordRoute))
}

export default changePasswordRoutes
