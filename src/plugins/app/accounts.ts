import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createAccountServices, type AccountServices } from '../../services/account-services.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The rules of accounts (services/account-services.ts): users, passwords, email verification. */
    accounts: AccountServices
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    app.decorate(
      'accounts',
      createAccountServices({
        repos: app.repos,
        transaction: (work) => app.transaction(work),
        // The object itself: its methods are looked up on each call (a test replaces one).
        sessions: app.sessions,
        audit: app.audit,
        accountEmails: app.accountEmails,
        passwordMinLength: config.passwordMinLength,
        secretKey: config.secretKey,
        clock: app.clock,
      }),
    )
  },
  { name: 'accounts', dependencies: ['db', 'security-events', 'sessions', 'mailer'] },
)
