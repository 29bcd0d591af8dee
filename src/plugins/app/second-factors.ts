import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createDataEncryption, dataEncryptionKeysOf } from '../../auth/data-encryption.js'
import { createFactorRules } from '../../services/factor-rules.js'
import { createMfaLoginService, type MfaLoginService } from '../../services/mfa-login.js'
import { createPasskeyLoginService, type PasskeyLoginService } from '../../services/passkey-login.js'
import { createPasskeyService, type PasskeyService } from '../../services/passkeys.js'
import { createReauthentication, type Reauthentication } from '../../services/reauthentication.js'
import { createSecondFactorService, type SecondFactorService } from '../../services/second-factors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The caller's second factors: TOTP enrolment, recovery codes, removal (services/second-factors.ts). */
    secondFactors: SecondFactorService
    /** The second step of a login that owes a second factor (services/mfa-login.ts). */
    mfaLogin: MfaLoginService
    /** The caller's passkeys: registration, list, rename, removal (services/passkeys.ts). */
    passkeys: PasskeyService
    /** Password-less login with a passkey (services/passkey-login.ts). */
    passkeyLogin: PasskeyLoginService
    /** Recent proof of identity for sensitive changes (services/reauthentication.ts). */
    reauthentication: Reauthentication
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const encryption = createDataEncryption(dataEncryptionKeysOf(config))
    const common = {
      config,
      repos: app.repos,
      transaction: <T>(work: (repos: typeof app.repos) => Promise<T>) => app.transaction(work),
      attempts: app.attemptLimits,
      encryption,
      audit: app.audit,
      clock: app.clock,
      notices: app.accountEmails,
    }
    const factors = createFactorRules(config)
    const reauthentication = createReauthentication(common)
    app.decorate('reauthentication', reauthentication)
    app.decorate('mfaLogin', createMfaLoginService({ ...common, sessions: app.sessions }))
    app.decorate(
      'secondFactors',
      createSecondFactorService({ ...common, reauthentication, factors, sessions: app.sessions }),
    )
    app.decorate('passkeys', createPasskeyService({ ...common, reauthentication, factors }))
    app.decorate('passkeyLogin', createPasskeyLoginService({ ...common, sessions: app.sessions }))
  },
  { name: 'second-factors', dependencies: ['db', 'security-events', 'rate-limit', 'sessions', 'mailer'] },
)
