import type { DataEncryption } from '../auth/data-encryption.js'
import { otpauthQrCodeSvg } from '../auth/qr-code.js'
import { generateTotpSecret, totpUri, verifyTotpCode } from '../auth/totp.js'
import type { Config } from '../config.js'
import type { AccountEmails } from './account-emails.js'
import type { Repositories } from '../repositories/index.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, conflict, invalidInput, notFound } from './errors.js'
import { totpSecretContext } from './factor-proofs.js'
import {
  activeFactorsOf,
  hasSecondFactor,
  replaceRecoveryCodes,
  type FactorRules,
  type SecondFactor,
} from './factor-rules.js'
import type { Reauthentication } from './reauthentication.js'
import type { SessionService } from './sessions.js'

/** The start of a TOTP enrolment: the only answer that ever shows the secret. */
export interface TotpEnrolment {
  secret: string
  otpauth_uri: string
  qr_svg: string
}

/** What the caller's account has, never a secret. */
export interface SecondFactorStatus {
  factors: SecondFactor[]
  totp: 'none' | 'pending' | 'active'
  passkeys: number
  recovery_codes_left: number
  /** An admin without a factor, with REQUIRE_MFA_FOR_ADMINS: nothing but enrolment is allowed. */
  enrolment_required: boolean
}

export interface SecondFactorService {
  status(context: RequestContext): Promise<SecondFactorStatus>
  /** A new pending enrolment (replacing a pending one); conflict when TOTP is already active. */
  startTotpEnrolment(context: RequestContext): Promise<TotpEnrolment>
  /** Activates the pending enrolment with a current code: the new recovery codes, shown once. */
  confirmTotp(context: RequestContext, code: string): Promise<string[]>
  /** A new set of recovery codes, after re-authentication; the old set stops working. */
  regenerateRecoveryCodes(context: RequestContext, password: string | undefined): Promise<string[]>
  /** Removes TOTP (pending or active), after re-authentication; with it the last factor's recovery codes. */
  disableTotp(context: RequestContext, password: string | undefined): Promise<void>
  /**
   * An admin's reset of another account's second factors (TOTP, passkeys, recovery codes, logins
   * waiting for a factor): the account's sessions end and its owner is told. Not found when there
   * is no such user; a conflict for the admin's own account (they remove their own factors).
   */
  resetFactors(context: RequestContext, userId: number): Promise<void>
}

export interface SecondFactorDependencies {
  config: Pick<Config, 'publicUrl' | 'publicUrlConfigured' | 'jwtIssuer'>
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  attempts: AttemptLimits
  encryption: DataEncryption
  audit: AuditService
  clock: Clock
  reauthentication: Reauthentication
  factors: FactorRules
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
  sessions: Pick<SessionService, 'endAllSessionsOf'>
}

/**
 * The name authenticator apps list the account under: the host of PUBLIC_URL when it is set
 * (what users know the service by), else JWT_ISSUER.
 */
export function totpIssuerOf(config: SecondFactorDependencies['config']): string {
  return config.publicUrlConfigured ? new URL(config.publicUrl).host : config.jwtIssuer
}

const TOTP_ACTIVE = 'TOTP is already active on this account: disable it first (DELETE /mfa/totp).'

/** confirmTotp: a current code of the pending enrolment activates it, with a new set of recovery codes. */
async function confirmTotp(deps: SecondFactorDependencies, context: RequestContext, code: string) {
  const { repos, audit, encryption } = deps
  const { id } = actorOf(context)
  await limitAttempt(deps.attempts, context, 'second_factor', id)
  const factor = await repos.totpFactors.find(id)
  if (factor?.confirmed_at) throw conflict(TOTP_ACTIVE)
  if (!factor) throw conflict('There is no TOTP enrolment to confirm: start one with POST /mfa/totp.')
  const secret = encryption.decrypt(factor.secret_encrypted, totpSecretContext(id))
  const step = verifyTotpCode(secret, code, dateOf(deps.clock))
  if (step === null) {
    await audit.record(context, {
      event: 'mfa_code_failed',
      outcome: 'failure',
      userId: id,
      details: { factor: 'totp', during: 'enrolment' },
    })
    throw invalidInput('The code is not the current one of this enrolment.', [
      { in: 'body', field: 'code', message: 'is not the current code of the authenticator app' },
    ])
  }
  const codes = await deps.transaction(async (txRepos) => {
    // Only the secret the code was checked against: an enrolment restarted meanwhile stays pending.
    if (!(await txRepos.totpFactors.confirm(id, factor.secret_encrypted, step, dateOf(deps.clock))))
      return undefined
    const codes = await replaceRecoveryCodes(deps, txRepos, id)
    await audit.record(context, { event: 'mfa_totp_enabled', outcome: 'success', userId: id }, txRepos)
    return codes
  })
  if (!codes) throw conflict('The enrolment changed meanwhile: scan the new code and confirm again.')
  deps.notices.sendSecurityNotice(id, { kind: 'totp_enabled' }, context.log)
  return codes
}

/** Reading the caller's factors and starting an enrolment. */
function enrolment(deps: SecondFactorDependencies) {
  const { repos, audit, encryption } = deps
  return {
    async status(context) {
      const { id, role } = actorOf(context)
      const totp = await repos.totpFactors.find(id)
      const factors = await activeFactorsOf(repos, id)
      return {
        factors,
        totp: !totp ? 'none' : totp.confirmed_at ? 'active' : 'pending',
        passkeys: await repos.passkeys.countForUser(id),
        recovery_codes_left: await repos.recoveryCodes.countUnused(id),
        enrolment_required: factors.length === 0 && deps.factors.mustHaveFactor({ role }),
      }
    },

    async startTotpEnrolment(context) {
      const { id } = actorOf(context)
      const user = await repos.users.findById(id)
      if (!user) throw accountGone()
      const secret = generateTotpSecret()
      const stored = encryption.encrypt(secret, totpSecretContext(id))
      // Refused while TOTP is active: the statement only replaces a pending enrolment.
      const started = await deps.transaction((txRepos) =>
        txRepos.totpFactors.startEnrolment(id, stored, dateOf(deps.clock)),
      )
      if (!started) throw conflict(TOTP_ACTIVE)
      await audit.record(context, { event: 'mfa_totp_enrolment_started', outcome: 'success', userId: id })
      const uri = totpUri(secret, { issuer: totpIssuerOf(deps.config), label: user.email })
      return { secret, otpauth_uri: uri, qr_svg: await otpauthQrCodeSvg(uri) }
    },
  } satisfies Partial<SecondFactorService>
}

/** Changes that need recent re-authentication: new recovery codes, TOTP removed. */
function reauthenticatedChanges(deps: SecondFactorDependencies) {
  const { repos, audit } = deps
  const noFactor = () =>
    conflict('Recovery codes stand in for a second factor, and this account has none (TOTP or a passkey).')
  return {
    async regenerateRecoveryCodes(context, password) {
      const { id } = actorOf(context)
      if (!(await hasSecondFactor(repos, id))) throw noFactor()
      await deps.reauthentication.require(context, password)
      const codes = await deps.transaction(async (txRepos) => {
        const codes = await replaceRecoveryCodes(deps, txRepos, id)
        // Read once replaceAll has locked the user: a factor removed meanwhile rolls the new set back.
        if (!(await hasSecondFactor(txRepos, id))) throw noFactor()
        const event = { event: 'mfa_recovery_codes_regenerated', outcome: 'success', userId: id } as const
        await audit.record(context, event, txRepos)
        return codes
      })
      deps.notices.sendSecurityNotice(id, { kind: 'recovery_codes_regenerated' }, context.log)
      return codes
    },

    async disableTotp(context, password) {
      const { id } = actorOf(context)
      const none = () => notFound('There is no TOTP factor on this account.')
      if (!(await repos.totpFactors.find(id))) throw none()
      await deps.reauthentication.require(context, password)
      const removed = await deps.transaction(async (txRepos) => {
        const codesBefore = await txRepos.recoveryCodes.countUnused(id)
        if (!(await txRepos.totpFactors.delete(id))) return false
        // Read after the delete has locked the user: what is left decides, whatever ran meanwhile.
        const left = await deps.factors.afterRemoval(txRepos, id)
        const details = {
          recovery_codes_removed: left.length === 0 ? codesBefore : 0,
          factors_left: left.length,
        }
        await audit.record(
          context,
          { event: 'mfa_totp_disabled', outcome: 'success', userId: id, details },
          txRepos,
        )
        return true
      })
      if (!removed) throw none()
      deps.notices.sendSecurityNotice(id, { kind: 'totp_disabled' }, context.log)
    },
  } satisfies Partial<SecondFactorService>
}

/** resetFactors: everything the account could prove a second factor with goes, and its sessions. */
async function resetFactors(deps: SecondFactorDependencies, context: RequestContext, userId: number) {
  const admin = actorOf(context)
  if (admin.id === userId)
    throw conflict(
      'An admin resets the second factors of other accounts: remove your own with DELETE /mfa/totp or /passkeys/{id}.',
    )
  const removed = await deps.transaction(async (txRepos) => {
    const user = await txRepos.users.findById(userId)
    if (!user) return undefined
    const totp = await txRepos.totpFactors.delete(userId)
    const passkeys = await txRepos.passkeys.deleteAll(userId)
    const codes = await txRepos.recoveryCodes.deleteAll(userId)
    await txRepos.mfaTokens.deleteForUser(userId)
    await deps.sessions.endAllSessionsOf(txRepos, userId, 'mfa_reset')
    const details = { totp, passkeys, recovery_codes: codes }
    await deps.audit.record(
      context,
      { event: 'mfa_factors_reset', outcome: 'success', userId, details },
      txRepos,
    )
    return details
  })
  if (!removed) throw notFound('There is no user with this id.')
  deps.notices.sendSecurityNotice(userId, { kind: 'factors_reset' }, context.log)
}

export function createSecondFactorService(deps: SecondFactorDependencies): SecondFactorService {
  return {
    ...enrolment(deps),
    ...reauthenticatedChanges(deps),
    resetFactors: (context, userId) => resetFactors(deps, context, userId),
    confirmTotp: (context, code) => confirmTotp(deps, context, code),
  }
}
