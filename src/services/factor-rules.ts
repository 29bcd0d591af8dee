import { generateRecoveryCodes, hashRecoveryCode } from '../auth/recovery-codes.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import { dateOf, type Clock } from './clock.js'
import { conflict } from './errors.js'

/** The second factors a login can continue with at POST /login/mfa. */
export type SecondFactor = 'totp' | 'passkey' | 'recovery_code'

/**
 * The active second factors of a user: TOTP once confirmed, passkeys, and the recovery codes while
 * some are unused and a factor they stand in for exists.
 */
export async function activeFactorsOf(repos: Repositories, userId: number): Promise<SecondFactor[]> {
  const factors: SecondFactor[] = []
  if ((await repos.totpFactors.find(userId))?.confirmed_at) factors.push('totp')
  if ((await repos.passkeys.countForUser(userId)) > 0) factors.push('passkey')
  if (factors.length > 0 && (await repos.recoveryCodes.countUnused(userId)) > 0) factors.push('recovery_code')
  return factors
}

/** Whether the user has a second factor of their own (TOTP or a passkey): recovery codes only stand in for one. */
export async function hasSecondFactor(repos: Repositories, userId: number): Promise<boolean> {
  const factors = await activeFactorsOf(repos, userId)
  // Stryker disable next-line ConditionalExpression,StringLiteral: recovery codes are listed only beside another factor (activeFactorsOf), so any factor at all answers the same.
  return factors.some((factor) => factor !== 'recovery_code')
}

/** A new set of recovery codes, stored as hashes in the caller's transaction (which locks the user). */
export async function replaceRecoveryCodes(deps: { clock: Clock }, txRepos: Repositories, userId: number) {
  const codes = generateRecoveryCodes()
  await txRepos.recoveryCodes.replaceAll(userId, codes.map(hashRecoveryCode), dateOf(deps.clock))
  return codes
}

/**
 * When the account's first second factor arrives (a passkey; TOTP's confirmation always answers a
 * set): a new set of recovery codes, so that losing that factor does not lose the account.
 * Undefined when the account already had a factor, whose codes stay as they are.
 */
export async function issueRecoveryCodesIfNone(
  deps: { clock: Clock },
  txRepos: Repositories,
  userId: number,
): Promise<string[] | undefined> {
  // The factor just added is counted: a first factor is the only one.
  const totp = (await txRepos.totpFactors.find(userId))?.confirmed_at ? 1 : 0
  if (totp + (await txRepos.passkeys.countForUser(userId)) > 1) return undefined
  return replaceRecoveryCodes(deps, txRepos, userId)
}

export interface FactorRules {
  /** Whether this user must keep a second factor (an admin, with REQUIRE_MFA_FOR_ADMINS). */
  mustHaveFactor(user: { role: string }): boolean
  /**
   * After a factor was removed in `txRepos` (whose transaction has locked the user): the factors
   * left. When none is left, an account that must have one refuses the removal (the transaction
   * rolls back); any other loses its recovery codes and the logins waiting for a second factor.
   */
  afterRemoval(txRepos: Repositories, userId: number): Promise<SecondFactor[]>
}

export function createFactorRules(config: Pick<Config, 'requireMfaForAdmins'>): FactorRules {
  const rules: FactorRules = {
    mustHaveFactor: (user) => config.requireMfaForAdmins && user.role === 'admin',

    async afterRemoval(txRepos, userId) {
      const left = await activeFactorsOf(txRepos, userId)
      if (left.length > 0) return left
      const user = await txRepos.users.findById(userId)
      if (user && rules.mustHaveFactor(user))
        throw conflict(
          'This is your last second factor, and admins must keep one (REQUIRE_MFA_FOR_ADMINS): add another first.',
        )
      await txRepos.recoveryCodes.deleteAll(userId)
      // Logins waiting for a second factor would have nothing left to finish with.
      await txRepos.mfaTokens.deleteForUser(userId)
      return left
    },
  }
  return rules
}
