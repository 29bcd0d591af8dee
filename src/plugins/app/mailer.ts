import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createAccountEmails, type AccountEmails } from '../../services/account-emails.js'
import { createMailer, type Mailer } from '../../mail/mailer.js'
import { createLogTransport, createSmtpTransport } from '../../mail/transports.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Outgoing email: `send` queues and returns; delivery and retries happen in the background. */
    mailer: Mailer
    /** The password reset and email verification emails, with their single-use tokens. */
    accountEmails: AccountEmails
  }
}

/** How long closing the app waits for emails still being prepared or delivered. */
const SHUTDOWN_GRACE_MS = 5_000

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const log = app.log.child({ component: 'mailer' })
    const transport = config.smtpUrl
      ? createSmtpTransport(config.smtpUrl, config.mailFrom)
      : createLogTransport(log, { showLinks: config.nodeEnv !== 'production' })
    if (!config.smtpUrl) {
      const notice = 'SMTP_URL is not set: emails are not sent'
      if (config.nodeEnv === 'production')
        log.warn(`${notice} (users cannot verify emails or reset passwords)`)
      else log.info(`${notice}; their links are written to this log`)
    }

    const mailer = createMailer({ transport, log })
    const accountEmails = createAccountEmails({
      repos: app.repos,
      mailer,
      links: {
        passwordReset: config.passwordResetUrl,
        emailVerification: config.emailVerificationUrl,
        account: `${config.publicUrl}/account`,
      },
      clock: app.clock,
    })
    app.decorate('mailer', mailer)
    app.decorate('accountEmails', accountEmails)

    // Runs before the database closes (hooks run in reverse order of registration): the emails
    // being prepared still need it.
    app.addHook('onClose', async () => {
      const deadline = Date.now() + SHUTDOWN_GRACE_MS
      if (!(await accountEmails.whenIdle(SHUTDOWN_GRACE_MS)))
        log.error('emails still being prepared at shutdown were abandoned')
      await mailer.close(Math.max(0, deadline - Date.now()))
    })
  },
  { name: 'mailer', dependencies: ['db'] },
)
