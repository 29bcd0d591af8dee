import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { authenticated } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import { EMAIL_VERIFICATION_LIFETIME_HOURS } from '../../services/account-emails.js'
import { Accepted, EmailVerification } from '../../schemas/account.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  sendPage,
  sendScript,
  VERIFY_EMAIL_PAGE,
  VERIFY_EMAIL_SCRIPT,
  VERIFY_EMAIL_SCRIPT_PATH,
} from './pages.js'

function registerVerifyEmail(app: TypedApp) {
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
      await app.accounts.emailVerification.verify(contextOf(request), request.body.token)
      return reply.code(204).send(null)
    },
  )
}

/** Registered authenticated: the caller's own address. */
function registerResendVerification(app: TypedApp) {
  app.post(
    '/verify-email/resend',
    {
      preHandler: [app.limitAttempts('verify_email_resend', (request) => request.actor.id)],
      schema: {
        tags: ['auth'],
        summary: 'Send a new verification email',
        description:
          'To the caller’s current address. Earlier links for that address keep working until they expire. ' +
          'An address that is already verified is a 409: no email would come.',
        response: { 202: Accepted, ...problemResponses(409) },
      },
    },
    async (request, reply) => {
      const user = await app.accounts.emailVerification.resend(contextOf(request))
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
}

const verificationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  registerVerifyEmail(app)
  await app.register(authenticated(async (api) => registerResendVerification(api)))

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
