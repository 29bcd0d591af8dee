import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '../auth/webauthn.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import type { Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { forbidden, unauthenticated } from './errors.js'
import { LOGIN_METHODS } from './session-tokens.js'
import type { SessionService, TokenPair } from './sessions.js'
import {
  recordAssertion,
  verifyAssertion,
  credentialHashOf,
  issueChallenge,
  requestOptions,
  spendChallenge,
} from './webauthn-ceremonies.js'

/**
 * A login with a passkey alone: the browser offers the passkeys it holds for our RP ID
 * (discoverable credentials), the authenticator verifies its user (PIN or biometric), and the
 * signed answer starts a session. No password, and no second factor owed: the passkey with its
 * user verification is two factors.
 */
export interface PasskeyLoginService {
  /** Options for navigator.credentials.get(): a challenge of no account, 5 minutes, once. */
  options(context: RequestContext): Promise<PublicKeyCredentialRequestOptionsJSON>
  complete(context: RequestContext, answer: AuthenticationResponseJSON): Promise<TokenPair>
}

export interface PasskeyLoginDependencies {
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins' | 'requireEmailVerification'>
  repos: Repositories
  sessions: Pick<SessionService, 'start'>
  attempts: AttemptLimits
  audit: AuditService
  clock: Clock
}

const NOT_ACCEPTED = 'The passkey was not accepted'

/** Records a refused passkey login and answers it: 401, with what the client can do about it. */
async function refusal(
  deps: PasskeyLoginDependencies,
  context: RequestContext,
  reason: string,
  detail: string,
  userId?: number,
) {
  await deps.audit.record(context, {
    event: 'passkey_login_failed',
    outcome: 'failure',
    userId,
    details: { reason },
  })
  return unauthenticated(`${NOT_ACCEPTED}: ${detail}`, true)
}

/** The passkey an answer proves, after every check of the answer; refused (401) otherwise. */
async function provenPasskey(
  deps: PasskeyLoginDependencies,
  context: RequestContext,
  answer: AuthenticationResponseJSON,
) {
  const passkey = await deps.repos.passkeys.findByCredential(credentialHashOf(answer.id))
  await limitAttempt(deps.attempts, context, 'passkey_login', passkey?.user_id)
  const spent = await spendChallenge(deps, answer, 'passkey_login', null)
  if (!spent)
    throw await refusal(
      deps,
      context,
      'challenge',
      'it does not answer a current login challenge (unknown, used or expired); ask for new options.',
      passkey?.user_id,
    )
  if (!passkey)
    throw await refusal(
      deps,
      context,
      'credential',
      'no account has this passkey (it may have been removed).',
    )
  // A discoverable credential names its account: it must be the one the passkey was registered for.
  if (answer.response.userHandle !== passkey.user_handle)
    throw await refusal(
      deps,
      context,
      'user_handle',
      'it does not belong to the account it names.',
      passkey.user_id,
    )
  const outcome = await verifyAssertion(deps, passkey, answer, spent.challenge, true)
  if (!outcome.ok) throw await refusal(deps, context, outcome.reason, outcome.message, passkey.user_id)
  return { passkey, newCounter: outcome.newCounter }
}

export function createPasskeyLoginService(deps: PasskeyLoginDependencies): PasskeyLoginService {
  const { repos, audit } = deps
  return {
    async options() {
      return requestOptions(deps.config, undefined, await issueChallenge(deps, 'passkey_login', null))
    },

    async complete(context, answer) {
      const { passkey, newCounter } = await provenPasskey(deps, context, answer)
      const user = await repos.users.findById(passkey.user_id)
      if (!user?.is_active)
        throw await refusal(deps, context, 'inactive', 'the account is not active.', passkey.user_id)
      if (deps.config.requireEmailVerification && !user.email_verified) {
        const details = { reason: 'email_not_verified' }
        await audit.record(context, {
          event: 'passkey_login_failed',
          outcome: 'failure',
          userId: user.id,
          details,
        })
        throw forbidden(
          'The email address of this account is not verified yet: follow the link in the email we sent.',
        )
      }
      // Only a login that goes on is a use of the passkey: a refused one leaves its counter as it was.
      const recorded = await recordAssertion(deps, passkey, newCounter)
      if (!recorded.ok) throw await refusal(deps, context, recorded.reason, recorded.message, user.id)
      const pair = await deps.sessions.start(user, context, LOGIN_METHODS.passkeyOnly)
      const details = { passkey_id: passkey.id }
      await audit.record(context, {
        event: 'passkey_login_succeeded',
        outcome: 'success',
        userId: user.id,
        details,
      })
      return pair
    },
  }
}
