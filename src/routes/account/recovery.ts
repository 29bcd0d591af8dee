import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { assertPasswordPolicy } from '../../auth/accounts.js'
import { normalizeEmail } from '../../auth/identifiers.js'
import { hashOpaqueToken } from '../../auth/opaque-tokens.js'
import { hashPassword } from '../../auth/passwords.js'
import type { Config } from '../../config.js'
import { PASSWORD_RESET_LIFETIME_MINUTES } from '../../mail/account-emails.js'
import { Accepted, PasswordRecoveryRequest, PasswordReset } from '../../schemas/account.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  RESET_PASSWORD_SCRIPT,
  RESET_PASSWORD_SCRIPT_PATH,
  resetPasswordPage,
  sendPage,
  sendScript,
} from './pages.js'
import { badRequest } from '../../services/errors.js'

const RECOVERY_ACCEPTED =
  'If an account with this email exists, we sent it a link to reset its password. ' +
  `The link works once, within ${PASSWORD_RESET_LIFETIME_MINUTES} minutes.`

/** One answer for an unknown, used and expired token: the caller learns nothing about which. */
const invalidResetLink = () =>
  badRequest(
    'This password reset link is not valid: it may have expired or been used already. Ask for a new one at POST /password-recovery.',
  )

const recoveryRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
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
      // Nothing is awaited before the answer: the lookup, the token and the email happen after
      // it, so neither the answer nor its timing tells whether the account exists.
      app.accountEmails.sendPasswordReset(request.body.email, request.log, (userId) =>
        app.recordSecurityEvent(request, { event: 'password_reset_requested', outcome: 'success', userId }),
      )
      return reply.code(202).header('cache-control', 'no-store').send({ detail: RECOVERY_ACCEPTED })
    },
  )

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
      assertPasswordPolicy(newPassword, config.passwordMinLength, 'new_password')
      const tokenHash = hashOpaqueToken(token)
      // Checked before the password is hashed, so that a made-up token costs one indexed read,
      // not an argon2 hash.
      const holder = await app.repos.accountTokens.findUsable(tokenHash, 'password_reset', new Date())
      if (!holder) throw invalidResetLink()
      const passwordHash = await hashPassword(newPassword)

      await app.transaction(async (repos) => {
        const now = new Date()
        // The claim decides: of two requests with one token, only one gets past this line.
        if (!(await repos.accountTokens.consume(tokenHash, 'password_reset', now))) throw invalidResetLink()
        const user = await repos.users.findById(holder.user_id)
        if (!user) throw invalidResetLink()
        await repos.users.update(user.id, {
          password_hash: passwordHash,
          updated_at: now,
          // The link reached the account's current address, which proves the address as well.
          ...(user.email === holder.email ? { email_verified: true } : {}),
        })
        await app.sessions.endAllSessionsOf(repos, user.id, 'password_reset')
        await app.recordSecurityEvent(
          request,
          { event: 'password_reset', outcome: 'success', userId: user.id },
          repos,
        )
      })
      return reply.code(204).send(null)
    },
  )

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
