import type { DataEncryption } from '../auth/data-encryption.js'
import { hashOpaqueToken } from '../auth/opaque-tokens.js'
import type { PublicKeyCredentialRequestOptionsJSON } from '../auth/webauthn.js'
import type { Config } from '../config.js'
import type { AccountEmails } from './account-emails.js'
import type { Repositories } from '../repositories/index.js'
import type { MfaTokenRecord } from '../repositories/mfa-tokens.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { conflict, unauthenticated } from './errors.js'
import { factorOf, prepareProof, spendProof, type SecondFactorProof } from './factor-proofs.js'
import { clientBindingOf, credentialStampOf } from './mfa-challenges.js'
import type { SessionService, TokenPair } from './sessions.js'
import { issueChallenge, requestOptions } from './webauthn-ceremonies.js'

export type { SecondFactorProof } from './factor-proofs.js'

/**
 * One answer for every mfa_token that cannot finish a login: unknown, used, expired, issued to
 * another client or before a password change. Telling them apart would tell a thief which.
 */
const INVALID_MFA_TOKEN = 'The mfa_token is invalid or expired: log in again with POST /login.'

export interface MfaLoginService {
  /**
   * Finishes a login that POST /login answered with an mfa_token: with the right second factor,
   * spends the token and starts the session. A wrong code leaves the token usable and counts as
   * a failed attempt on the account.
   */
  complete(context: RequestContext, mfaToken: string, proof: SecondFactorProof): Promise<TokenPair>
  /** Options for navigator.credentials.get() listing the account's passkeys, for the same mfa_token. */
  passkeyOptions(context: RequestContext, mfaToken: string): Promise<PublicKeyCredentialRequestOptionsJSON>
}

export interface MfaLoginDependencies {
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins'>
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  sessions: Pick<SessionService, 'start'>
  attempts: AttemptLimits
  encryption: DataEncryption
  audit: AuditService
  clock: Clock
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
}

/** The token's record if it may finish a login from this client with the current password. */
async function usableToken(deps: MfaLoginDependencies, context: RequestContext, tokenHash: string) {
  const { repos, audit } = deps
  const found = await repos.mfaTokens.findUsable(tokenHash, dateOf(deps.clock))
  const passwordHash = found && (await repos.users.findPasswordHash(found.user_id))
  // Stryker disable ConditionalExpression,LogicalOperator: a missing token or account already fails the comparisons below (no stamp is the digest of "undefined").
  const bound =
    found !== undefined &&
    passwordHash !== undefined &&
    // Stryker restore ConditionalExpression,LogicalOperator
    found.client_hash === clientBindingOf(context.userAgent) &&
    found.credential_stamp === credentialStampOf(passwordHash)
  if (bound) return found
  await audit.record(context, {
    event: 'mfa_token_refused',
    outcome: 'failure',
    userId: found?.user_id,
    details: {
      reason: !found ? 'unknown_used_or_expired' : passwordHash === undefined ? 'no_account' : 'binding',
    },
  })
  throw unauthenticated(INVALID_MFA_TOKEN, false)
}

async function startSession(
  deps: MfaLoginDependencies,
  token: MfaTokenRecord,
  context: RequestContext,
  amr: readonly string[],
) {
  const user = await deps.repos.users.findById(token.user_id)
  if (!user || !user.is_active) throw unauthenticated(INVALID_MFA_TOKEN, false)
  // Its own short transaction, after the one that spent the token and the factor: the session's
  // insert takes a lock on the user's row (its foreign key), which that one held.
  return deps.sessions.start(user, context, amr)
}

/** Thrown inside the transaction to roll the token's use back when the factor is wrong. */
class FactorRefused extends Error {
  constructor(readonly detail: string) {
    super(detail)
  }
}

/**
 * Spends the token, then the factor, in one transaction: the token first, so that of two requests
 * with one token only one ever checks (and spends) a factor; a wrong factor rolls the token's use
 * back, so it stays usable for the next try. Undefined when the token was spent meanwhile.
 */
async function spendTokenAndFactor(
  deps: MfaLoginDependencies,
  tokenHash: string,
  userId: number,
  proof: SecondFactorProof,
) {
  const prepared = await prepareProof(deps, userId, proof)
  return deps.transaction(async (txRepos) => {
    const spent = await txRepos.mfaTokens.consume(tokenHash, userId, dateOf(deps.clock))
    if (!spent) return undefined
    const outcome = await spendProof(deps, txRepos, userId, prepared)
    if (!outcome.ok) throw new FactorRefused(outcome.detail)
    return { token: spent, amr: outcome.amr }
  })
}

export function createMfaLoginService(deps: MfaLoginDependencies): MfaLoginService {
  const { repos, audit } = deps

  return {
    async complete(context, mfaToken, proof) {
      const tokenHash = hashOpaqueToken(mfaToken)
      const { user_id: userId } = await usableToken(deps, context, tokenHash)
      await limitAttempt(deps.attempts, context, 'second_factor', userId)
      const factor = factorOf(proof)
      let spent: Awaited<ReturnType<typeof spendTokenAndFactor>>
      try {
        spent = await spendTokenAndFactor(deps, tokenHash, userId, proof)
      } catch (error) {
        if (!(error instanceof FactorRefused)) throw error
        await audit.record(context, {
          event: 'mfa_code_failed',
          outcome: 'failure',
          userId,
          details: { factor },
        })
        // Whoever this is knows the password: the owner should hear of it.
        deps.notices.sendSecurityNotice(userId, { kind: 'second_factor_failed' }, context.log)
        throw unauthenticated(`${error.detail} The mfa_token still works: try again.`, false)
      }
      if (!spent) throw unauthenticated(INVALID_MFA_TOKEN, false)
      if (factor === 'recovery_code') {
        const left = await repos.recoveryCodes.countUnused(userId)
        await audit.record(context, {
          event: 'mfa_recovery_code_used',
          outcome: 'success',
          userId,
          details: { codes_left: left },
        })
        deps.notices.sendSecurityNotice(userId, { kind: 'recovery_code_used', codesLeft: left }, context.log)
      }
      const pair = await startSession(deps, spent.token, context, spent.amr)
      await audit.record(context, {
        event: 'mfa_login_succeeded',
        outcome: 'success',
        userId,
        details: { factor },
      })
      return pair
    },

    async passkeyOptions(context, mfaToken) {
      const { user_id: userId } = await usableToken(deps, context, hashOpaqueToken(mfaToken))
      const passkeys = await repos.passkeys.listForUser(userId)
      if (passkeys.length === 0) throw conflict('This account has no passkey: finish the login with a code.')
      return requestOptions(deps.config, passkeys, await issueChallenge(deps, 'second_factor', userId))
    },
  }
}
