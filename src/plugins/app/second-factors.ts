import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createDataEncryption, dataEncryptionKeysOf } from '../../auth/data-encryption.js'
import { createMfaLoginService, type MfaLoginService } from '../../services/mfa-login.js'
import { createSecondFactorService, type SecondFactorService } from '../../services/second-factors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The caller's second factors: TOTP enrolment, recovery codes, removal (services/second-factors.ts). */
    secondFactors: SecondFactorService
    /** The second step of a login that owes a second factor (services/mfa-login.ts). */
    mfaLogin: MfaLoginService
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const encryption = createDataEncryption(dataEncryptionKeysOf(config))
    const common = {
      repos: app.repos,
      attempts: app.attemptLimits,
      encryption,
      audit: app.audit,
      clock: app.clock,
    }
    app.decorate('mfaLogin', createMfaLoginService({ ...common, sessions: app.sessions }))
    app.decorate(
      'secondFactors',
      createSecondFactorService({ ...common, config, transaction: (work) => app.transaction(work) }),
    )
  },
  { name: 'second-factors', dependencies: ['db', 'security-events', 'rate-limit', 'sessions'] },
)
