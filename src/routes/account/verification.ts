import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { hashOpaqueToken } from '../../auth/opaque-tokens.js'
import { badRequest, conflict } from '../../services/errors.js'
import { EMAIL_VERIFICATION_LIFETIME_HOURS } from '../../mail/account-emails.js'
import { bearerSecurity } from '../../http/openapi.js'
import { Accepted, EmailVerification } from '../../schemas/account.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  sendPage,
  sendScript,
  VERIFY_EMAIL_PAGE,
  VERIFY_EMAIL_SCRIPT,
  VERIFY_EMAIL_SCRIPT_PATH,
} from './pages.js'

/** One answer for an unknown, used, expired or outdated token. */
const invalidVerificationLink = () =>
  badRequest(
    'This email verification link is not valid: it may have expired, been used already, or be for an ' +
      'email address the account no longer has. Log in and ask for a new one at POST /verify-email/resend.',
  )

const verificationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/verify-email',
    {
      preHandler: [app.limitAttempts('verify_email', () => undefined)],
      schema: {
        tags: ['auth'],
        summary: 'Verify an email address with the token from a verification email',
        description:
          `The token works once, for ${EMAIL_VERIFICATION_LIFETIME_HOURS} hours, and only while the account ` +
          'still has the address it was sent to. Otherwise a 400.',
        body: EmailVerification,
        response: { 204: Type.Null({ description: 'Verified' }), ...problemResponses(400, 415, 422) },
      },
    },
    async (request, reply) => {
      const tokenHash = hashOpaqueToken(request.body.token)
      await app.transaction(async (repos) => {
        const now = new Date()
        const holder = await repos.accountTokens.findUsable(tokenHash, 'email_verification', now)
        if (!holder) throw invalidVerificationLink()
        if (!(await repos.accountTokens.consume(tokenHash, 'email_verification', now)))
          throw invalidVerificationLink()
        // A token proves the address it was mailed to, and nothing about one the account has now.
        // (Thrown inside the transaction, so the token is not spent.)
        if (!(await repos.accountTokens.markEmailVerified(holder.user_id, holder.email, now)))
          throw invalidVerificationLink()
        await app.recordSecurityEvent(
          request,
          { event: 'email_verified', outcome: 'success', userId: holder.user_id },
          repos,
        )
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/verify-email/resend',
    {
      onRequest: [app.authenticate],
      preHandler: [app.limitAttempts('verify_email_resend', (request) => request.actor.id)],
      schema: {
        tags: ['auth'],
        summary: 'Send a new verification email',
        description:
          'To the caller’s current address. Earlier links for that address keep working until they expire. ' +
          'An address that is already verified is a 409: no email would come.',
        security: bearerSecurity,
        response: { 202: Accepted, ...problemResponses(401, 409) },
      },
    },
    async (request, reply) => {
      const user = await app.currentUser(request)
      if (user.email_verified) throw conflict('Your email address is already verified.')
      app.accountEmails.sendEmailVerification(user, request.log)
      return reply
        .code(202)
        .header('cache-control', 'no-store')
        .send({
          detail:
            `We are sending a new verification link to ${user.email}. ` +
            `It works once, within ${EMAIL_VERIFICATION_LIFETIME_HOURS} hours.`,
        })
    },
  )

  // The page the emailed link opens; hidden from the API docs, and not logged at info level
  // because its URL holds the token.
  app.get('/verify-email', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) =>
    sendPage(reply, VERIFY_EMAIL_PAGE),
  )
  app.get(VERIFY_EMAIL_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    sendScript(reply, VERIFY_EMAIL_SCRIPT),
  )
}

export default verificationRoutes
