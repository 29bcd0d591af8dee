import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createExternalAccounts, type ExternalAccounts } from '../../services/external-accounts.js'
import { createExternalIdentities, type ExternalIdentities } from '../../services/external-identities.js'
import { createExternalLogins, type ExternalLogins } from '../../services/external-logins.js'
import { createMfaChallenges } from '../../services/mfa-challenges.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Sign-in with OpenID Connect providers: the provider's side (services/external-logins.ts). */
    externalLogins: ExternalLogins
    /** Sign-in with OpenID Connect providers: the accounts' side (services/external-accounts.ts). */
    externalAccounts: ExternalAccounts
    /** The caller's linked identities: link, list, unlink (services/external-identities.ts). */
    externalIdentities: ExternalIdentities
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const common = {
      config,
      repos: app.repos,
      transaction: <T>(work: (repos: typeof app.repos) => Promise<T>) => app.transaction(work),
      audit: app.audit,
      notices: app.accountEmails,
      clock: app.clock,
    }
    const logins = createExternalLogins(common)
    app.decorate('externalLogins', logins)
    app.decorate(
      'externalAccounts',
      createExternalAccounts({
        ...common,
        logins,
        sessions: app.sessions,
        challenges: createMfaChallenges({ repos: app.repos, clock: app.clock }),
      }),
    )
    app.decorate(
      'externalIdentities',
      createExternalIdentities({ ...common, logins, reauthentication: app.reauthentication }),
    )
  },
  {
    name: 'external-logins',
    dependencies: ['db', 'security-events', 'sessions', 'mailer', 'second-factors'],
  },
)
