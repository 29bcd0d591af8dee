import type { DataEncryption } from '../auth/data-encryption.js'
import { hashOpaqueToken } from '../auth/opaque-tokens.js'
import { hashRecoveryCode, normalizeRecoveryCode } from '../auth/recovery-codes.js'
import { verifyTotpCode } from '../auth/totp.js'
import type { Repositories } from '../repositories/index.js'
import type { MfaTokenRecord } from '../repositories/mfa-tokens.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { unauthenticated } from './errors.js'
import { clientBindingOf, credentialStampOf } from './mfa-challenges.js'
import { LOGIN_METHODS } from './session-tokens.js'
import type { SessionService, TokenPair } from './sessions.js'

/** The second factor that finishes a login: a TOTP code, or one of the recovery codes. */
export type SecondFactorProof = { code: string } | { recoveryCode: string }

/**
 * One answer for every mfa_token that cannot finish a login: unknown, used, expired, issued to
 * another client or before a password change. Telling them apart would tell a thief which.
 */
const INVALID_MFA_TOKEN = 'The mfa_token is invalid or expired: log in again with POST /login.'
const WRONG_CODE =
  'The code is not right, or was already used; the mfa_token still works: try again with a new code.'

/** The context every TOTP secret is encrypted with: a secret copied to another user's row does not decrypt. */
export const totpSecretContext = (userId: number) => `totp:user:${userId}`

export interface MfaLoginService {
  /**
   * Finishes a login that POST /login answered with an mfa_token: with the right second factor,
   * spends the token and starts the session. A wrong code leaves the token usable and counts as
   * a failed attempt on the account.
   */
  complete(context: RequestContext, mfaToken: string, proof: SecondFactorProof): Promise<TokenPair>
}

export interface MfaLoginDependencies {
  repos: Repositories
  sessions: Pick<SessionService, 'start'>
  attempts: AttemptLimits
  encryption: DataEncryption
  audit: AuditService
  clock: Clock
}

/** The token's record if it may finish a login from this client with the current password. */
async function usableToken(
  deps: MfaLoginDependencies,
  context: RequestContext,
  tokenHash: string,
  now: Date,
) {
  const { repos, audit } = deps
  const found = await repos.mfaTokens.findUsable(tokenHash, now)
  const passwordHash = found && (await repos.users.findPasswordHash(found.user_id))
  const bound =
    found !== undefined &&
    passwordHash !== undefined &&
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

/** Checks and spends the second factor: the login methods it proves, or undefined when it is wrong. */
async function spendFactor(deps: MfaLoginDependencies, userId: number, proof: SecondFactorProof, now: Date) {
  const { repos } = deps
  if ('code' in proof) {
    const factor = await repos.totpFactors.find(userId)
    if (!factor?.confirmed_at) return undefined
    const secret = deps.encryption.decrypt(factor.secret_encrypted, totpSecretContext(userId))
    const step = verifyTotpCode(secret, proof.code, now)
    // The step is recorded by one conditional UPDATE: a code, or an older one, never works twice.
    if (step === null || !(await repos.totpFactors.acceptStep(userId, step))) return undefined
    return LOGIN_METHODS.totp
  }
  const code = normalizeRecoveryCode(proof.recoveryCode)
  if (code === null || !(await repos.recoveryCodes.consume(userId, hashRecoveryCode(code), now)))
    return undefined
  return LOGIN_METHODS.recoveryCode
}

async function startSession(
  deps: MfaLoginDependencies,
  context: RequestContext,
  token: MfaTokenRecord,
  amr: readonly string[],
) {
  const { repos } = deps
  const user = await repos.users.findById(token.user_id)
  if (!user || !user.is_active) throw unauthenticated(INVALID_MFA_TOKEN, false)
  // Its own short transaction, after the factor's and the token's single statements: the
  // session's insert takes a lock on the user's row (its foreign key) that a factor change
  // holding that row would wait on (src/repositories/user-lock.ts).
  return deps.sessions.start(user, context, amr)
}

export function createMfaLoginService(deps: MfaLoginDependencies): MfaLoginService {
  const { repos, audit } = deps

  return {
    async complete(context, mfaToken, proof) {
      const tokenHash = hashOpaqueToken(mfaToken)
      const token = await usableToken(deps, context, tokenHash, dateOf(deps.clock))
      const userId = token.user_id
      await limitAttempt(deps.attempts, context, 'second_factor', userId)
      const amr = await spendFactor(deps, userId, proof, dateOf(deps.clock))
      const factor = 'code' in proof ? 'totp' : 'recovery_code'
      if (!amr) {
        await audit.record(context, {
          event: 'mfa_code_failed',
          outcome: 'failure',
          userId,
          details: { factor },
        })
        throw unauthenticated(WRONG_CODE, false)
      }
      // Of two requests with one token, only one spends it (a conditional UPDATE).
      const spent = await repos.mfaTokens.consume(tokenHash, dateOf(deps.clock))
      if (!spent) throw unauthenticated(INVALID_MFA_TOKEN, false)
      if (factor === 'recovery_code') {
        const left = await repos.recoveryCodes.countUnused(userId)
        await audit.record(context, {
          event: 'mfa_recovery_code_used',
          outcome: 'success',
          userId,
          details: { codes_left: left },
        })
      }
      const pair = await startSession(deps, context, spent, amr)
      await audit.record(context, {
        event: 'mfa_login_succeeded',
        outcome: 'success',
        userId,
        details: { factor },
      })
      return pair
    },
  }
}
