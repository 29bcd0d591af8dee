import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { normalizeEmail } from '../../auth/identifiers.js'
import type { Config } from '../../config.js'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import { PASSWORD_RESET_LIFETIME_MINUTES } from '../../services/account-emails.js'
import { Accepted, PasswordRecoveryRequest, PasswordReset } from '../../schemas/account.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  RESET_PASSWORD_SCRIPT,
  RESET_PASSWORD_SCRIPT_PATH,
  resetPasswordPage,
  sendPage,
  sendScript,
} from './pages.js'

const RECOVERY_ACCEPTED =
  'If an account with this email exists, we sent it a link to reset its password. ' +
  `The link works once, within ${PASSWORD_RESET_LIFETIME_MINUTES} minutes.`

function registerPasswordRecovery(app: TypedApp) {
  app.post(
    '/password-recovery',
    {
      preHandler: [
        app.limitAttempts<{ email: string }>('password_recovery', (request) =>
          normalizeEmail(request.body.email),
        ),
      ],
      schema: {
        tags: ['auth'],
        summary: 'Ask for a password reset link by email',
        description:
          'Always answers 202 with the same body, whether or not an account has this email, and before ' +
          'looking it up. When an active account has it, a link valid for 1 hour is emailed; a newer link ' +
          'replaces older ones.',
        body: PasswordRecoveryRequest,
        response: { 202: Accepted, ...problemResponses(415, 422) },
      },
    },
    async (request, reply) => {
      // Returns at once: the answer never waits for (nor reveals) the account lookup.
      app.accounts.passwords.requestReset(contextOf(request), request.body.email)
      return reply.code(202).header('cache-control', 'no-store').send({ detail: RECOVERY_ACCEPTED })
    },
  )
}

function registerPasswordReset(app: TypedApp) {
  app.post(
    '/reset-password',
    {
      preHandler: [app.limitAttempts('password_reset', () => undefined)],
      schema: {
        tags: ['auth'],
        summary: 'Set a new password with the token from a reset email',
        description:
          'The token works once and for 1 hour. Every session of the account is ended. A token that is ' +
          'unknown, used or expired is a 400; a new password that breaks the password rules is a 422 and ' +
          'leaves the token usable.',
        body: PasswordReset,
        response: { 204: Type.Null({ description: 'Password changed' }), ...problemResponses(400, 415, 422) },
      },
    },
    async (request, reply) => {
      const { token, new_password: newPassword } = request.body
      await app.accounts.passwords.reset(contextOf(request), { token, newPassword })
      return reply.code(204).send(null)
    },
  )
}

const recoveryRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  registerPasswordRecovery(app)
  registerPasswordReset(app)
  // The page the emailed link opens (hidden from the API docs: it is for people, not clients).
  // Its URL holds the token, so its requests are not logged at the usual info level.
  app.get('/reset-password', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) =>
    sendPage(reply, resetPasswordPage(config.passwordMinLength)),
  )
  app.get(RESET_PASSWORD_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    sendScript(reply, RESET_PASSWORD_SCRIPT),
  )
}

export default recoveryRoutes
