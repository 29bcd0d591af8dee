import { loginLookup } from '../auth/identifiers.js'
import { hasPassword, verifyAgainstDummyHash, verifyPassword } from '../auth/passwords.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import type { AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import type { RequestContext } from './context.js'
import { forbidden, secondFactorRequired, unauthenticated } from './errors.js'
import type { MfaChallenges } from './mfa-challenges.js'
import { LOGIN_METHODS } from './session-tokens.js'
import type { SessionService, TokenPair } from './sessions.js'

/** The same answer for an unknown account, a wrong password and a deactivated account. */
const BAD_CREDENTIALS = 'Incorrect username or password.'

export interface LoginService {
  /**
   * Logs in with a login name (the email or the user name, case-insensitive) and a password:
   * starts a session and answers its first tokens. An account with a second factor gets no
   * session yet: a forbidden error whose extensions carry the mfa_token for POST /login/mfa.
   */
  withPassword(context: RequestContext, username: string, password: string): Promise<TokenPair>
}

export interface LoginServiceDependencies {
  config: Pick<Config, 'requireEmailVerification'>
  repos: Repositories
  sessions: SessionService
  audit: AuditService
  challenges: MfaChallenges
  /** The attempt limits that counted this login: a right password clears the account's failures. */
  attempts: Pick<AttemptLimits, 'succeeded'>
}

export function createLoginService({
  config,
  repos,
  sessions,
  audit,
  challenges,
  attempts,
}: LoginServiceDependencies): LoginService {
  return {
    async withPassword(context, username, password) {
      const lookup = loginLookup(username)
      const credentials = await repos.users.findCredentialsByLogin(lookup)
      // An unknown account costs the same hashing as a known one: the time says nothing of it.
      // So does an account without a password (made by a sign-in with an identity provider).
      const valid =
        credentials && hasPassword(credentials.password_hash)
          ? await verifyPassword(credentials.password_hash, password)
          : await verifyAgainstDummyHash(password)
      if (!credentials || !valid || !credentials.is_active) {
        // Never the login name that was tried: for an unknown account it may be a password typed
        // into the wrong field. An existing account is named by its id.
        await audit.record(context, {
          event: 'login_failed',
          outcome: 'failure',
          userId: credentials?.id,
          details: { reason: !credentials ? 'unknown_account' : !valid ? 'wrong_password' : 'inactive' },
        })
        throw unauthenticated(BAD_CREDENTIALS, false)
      }
      // The right password of an active account: not a failure, whatever comes next (an
      // unverified email, a second factor), so the account's failed attempts are forgiven.
      await attempts.succeeded(context, 'login', lookup.key)
      // Said only to the holder of the right password, so it reveals nothing to anyone else.
      if (config.requireEmailVerification && !credentials.email_verified) {
        await audit.record(context, {
          event: 'login_failed',
          outcome: 'failure',
          userId: credentials.id,
          details: { reason: 'email_not_verified' },
        })
        throw forbidden(
          'The email address of this account is not verified yet: follow the link in the email we sent.',
        )
      }
      const factors = await challenges.factorsOf(credentials.id)
      if (factors.length > 0) {
        const challenge = await challenges.issue(credentials.id, credentials.password_hash, context, factors)
        await audit.record(context, {
          event: 'mfa_challenge_issued',
          outcome: 'success',
          userId: credentials.id,
          details: { factors: factors.join(' ') },
        })
        throw secondFactorRequired(
          'The password is right; this account also needs a second factor: send the mfa_token with a code to POST /login/mfa.',
          { error: 'mfa_required', ...challenge },
        )
      }
      const pair = await sessions.start(credentials, context, LOGIN_METHODS.password)
      await audit.record(context, { event: 'login_succeeded', outcome: 'success', userId: credentials.id })
      return pair
    },
  }
}
