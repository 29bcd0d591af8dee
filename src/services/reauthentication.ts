import { verifyPassword } from '../auth/passwords.js'
import type { AccountEmails } from './account-emails.js'
import type { PublicKeyCredentialRequestOptionsJSON } from '../auth/webauthn.js'
import type { Repositories } from '../repositories/index.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import { dateOf } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, conflict, DomainError, invalidInput, unauthenticated } from './errors.js'
import {
  factorOf,
  prepareProof,
  spendProof,
  type ProofDependencies,
  type SecondFactorProof,
} from './factor-proofs.js'
import { issueChallenge, requestOptions } from './webauthn-ceremonies.js'

/** How long a second factor proved in a session stands in for the password (sensitive changes). */
export const REAUTHENTICATION_WINDOW_SECONDS = 5 * 60

/** A sensitive change asked without the password nor a recent second factor (403). */
export const reauthenticationRequired = () =>
  new DomainError(
    'forbidden',
    'This change needs your current password, or a second factor proved in the last 5 minutes: ' +
      'send `password`, or re-authenticate with POST /mfa/reauthenticate first.',
    { extensions: { error: 'reauthentication_required' } },
  )

/** Whether a second factor proved at `verifiedAt` still stands in for the password at `now`. */
export function isRecentFactor(verifiedAt: Date | null | undefined, now: Date): boolean {
  return verifiedAt != null && now.getTime() - verifiedAt.getTime() < REAUTHENTICATION_WINDOW_SECONDS * 1000
}

export interface Reauthentication {
  /**
   * Passes when `password` is the caller's current password or, without one, when the caller's
   * session proved a second factor less than 5 minutes ago (its login or a re-authentication).
   * A wrong password is 422 and counts against the account's attempt limit. `repos`: where to read
   * the session (a caller's transaction, so that the decision and its change see the same rows).
   */
  require(context: RequestContext, password: string | undefined, repos?: Repositories): Promise<void>
  /** Proves a second factor in the caller's session: for the next 5 minutes, no password is asked. */
  withSecondFactor(context: RequestContext, proof: SecondFactorProof): Promise<{ expires_in: number }>
  /** Options for navigator.credentials.get() listing the caller's passkeys, to re-authenticate. */
  passkeyOptions(context: RequestContext): Promise<PublicKeyCredentialRequestOptionsJSON>
}

export interface ReauthenticationDependencies extends ProofDependencies {
  transaction<T>(work: (repos: ProofDependencies['repos']) => Promise<T>): Promise<T>
  attempts: AttemptLimits
  audit: AuditService
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
}

async function checkPassword(deps: ReauthenticationDependencies, context: RequestContext, password: string) {
  const { id } = actorOf(context)
  await limitAttempt(deps.attempts, context, 'reauthenticate', id)
  const storedHash = await deps.repos.users.findPasswordHash(id)
  if (storedHash === undefined) throw accountGone()
  if (await verifyPassword(storedHash, password)) return
  await deps.audit.record(context, { event: 'mfa_reauthentication_failed', outcome: 'failure', userId: id })
  throw invalidInput('The password is not right.', [
    { in: 'body', field: 'password', message: 'is not your current password' },
  ])
}

export function createReauthentication(deps: ReauthenticationDependencies): Reauthentication {
  const { repos, audit } = deps
  return {
    async require(context, password, sessionRepos = repos) {
      if (password !== undefined) return checkPassword(deps, context, password)
      const { id, sessionId } = actorOf(context)
      const verifiedAt = await sessionRepos.sessions.factorVerifiedAt(sessionId, id)
      if (!isRecentFactor(verifiedAt, dateOf(deps.clock))) throw reauthenticationRequired()
    },

    async withSecondFactor(context, proof) {
      const { id, sessionId } = actorOf(context)
      await limitAttempt(deps.attempts, context, 'second_factor', id)
      const prepared = await prepareProof(deps, id, proof)
      const outcome = await deps.transaction(async (txRepos) => {
        const result = await spendProof(deps, txRepos, id, prepared)
        if (result.ok && !(await txRepos.sessions.markFactorVerified(sessionId, id, dateOf(deps.clock))))
          throw unauthenticated('This session has ended: log in again.', true)
        return result
      })
      const factor = factorOf(proof)
      if (!outcome.ok) {
        await audit.record(context, {
          event: 'mfa_code_failed',
          outcome: 'failure',
          userId: id,
          details: { factor, during: 'reauthentication' },
        })
        throw invalidInput(outcome.detail, [
          { in: 'body', field: factor === 'totp' ? 'code' : factor, message: 'was not accepted' },
        ])
      }
      if (factor === 'recovery_code') {
        const left = await repos.recoveryCodes.countUnused(id)
        await audit.record(context, {
          event: 'mfa_recovery_code_used',
          outcome: 'success',
          userId: id,
          details: { codes_left: left },
        })
        deps.notices.sendSecurityNotice(id, { kind: 'recovery_code_used', codesLeft: left }, context.log)
      }
      await audit.record(context, {
        event: 'mfa_reauthenticated',
        outcome: 'success',
        userId: id,
        details: { factor },
      })
      return { expires_in: REAUTHENTICATION_WINDOW_SECONDS }
    },

    async passkeyOptions(context) {
      const { id } = actorOf(context)
      const passkeys = await repos.passkeys.listForUser(id)
      if (passkeys.length === 0)
        throw conflict('You have no passkey: re-authenticate with a code or your password.')
      return requestOptions(deps.config, passkeys, await issueChallenge(deps, 'second_factor', id))
    },
  }
}
