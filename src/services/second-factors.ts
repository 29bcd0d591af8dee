import type { DataEncryption } from '../auth/data-encryption.js'
import { verifyPassword } from '../auth/passwords.js'
import { otpauthQrCodeSvg } from '../auth/qr-code.js'
import { generateRecoveryCodes, hashRecoveryCode } from '../auth/recovery-codes.js'
import { generateTotpSecret, totpUri, verifyTotpCode } from '../auth/totp.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import { limitAttempt, type AttemptLimits } from './attempts.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, conflict, invalidInput, notFound } from './errors.js'
import { createMfaChallenges, type SecondFactor } from './mfa-challenges.js'
import { totpSecretContext } from './mfa-login.js'

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
  recovery_codes_left: number
}

export interface SecondFactorService {
  status(context: RequestContext): Promise<SecondFactorStatus>
  /** A new pending enrolment (replacing a pending one); conflict when TOTP is already active. */
  startTotpEnrolment(context: RequestContext): Promise<TotpEnrolment>
  /** Activates the pending enrolment with a current code: the new recovery codes, shown once. */
  confirmTotp(context: RequestContext, code: string): Promise<string[]>
  /** A new set of recovery codes, given the current password; the old set stops working. */
  regenerateRecoveryCodes(context: RequestContext, password: string): Promise<string[]>
  /** Removes TOTP (pending or active) and the recovery codes, given the current password. */
  disableTotp(context: RequestContext, password: string): Promise<void>
}

export interface SecondFactorDependencies {
  config: Pick<Config, 'publicUrl' | 'publicUrlConfigured' | 'jwtIssuer'>
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  attempts: AttemptLimits
  encryption: DataEncryption
  audit: AuditService
  clock: Clock
}

/**
 * The name authenticator apps list the account under: the host of PUBLIC_URL when it is set
 * (what users know the service by), else JWT_ISSUER.
 */
export function totpIssuerOf(config: SecondFactorDependencies['config']): string {
  return config.publicUrlConfigured ? new URL(config.publicUrl).host : config.jwtIssuer
}

const TOTP_ACTIVE = 'TOTP is already active on this account: disable it first (DELETE /mfa/totp).'

/** Recent proof that the caller is the account's owner, not just a holder of its access token. */
async function reauthenticate(deps: SecondFactorDependencies, context: RequestContext, password: string) {
  const { repos, audit } = deps
  const { id } = actorOf(context)
  await limitAttempt(deps.attempts, context, 'reauthenticate', id)
  const storedHash = await repos.users.findPasswordHash(id)
  if (storedHash === undefined) throw accountGone()
  if (await verifyPassword(storedHash, password)) return
  await audit.record(context, { event: 'mfa_reauthentication_failed', outcome: 'failure', userId: id })
  throw invalidInput('The password is not right.', [
    { in: 'body', field: 'password', message: 'is not your current password' },
  ])
}

/** A new set of codes, stored as hashes in the caller's transaction (which has locked the user). */
async function replaceCodes(deps: SecondFactorDependencies, txRepos: Repositories, userId: number) {
  const codes = generateRecoveryCodes()
  await txRepos.recoveryCodes.replaceAll(userId, codes.map(hashRecoveryCode), dateOf(deps.clock))
  return codes
}

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
    const codes = await replaceCodes(deps, txRepos, id)
    await audit.record(context, { event: 'mfa_totp_enabled', outcome: 'success', userId: id }, txRepos)
    return codes
  })
  if (!codes) throw conflict('The enrolment changed meanwhile: scan the new code and confirm again.')
  return codes
}

/** Reading the caller's factors and starting an enrolment. */
function enrolment(deps: SecondFactorDependencies) {
  const { repos, audit, encryption } = deps
  const challenges = createMfaChallenges(deps)
  return {
    async status(context) {
      const { id } = actorOf(context)
      const totp = await repos.totpFactors.find(id)
      return {
        factors: await challenges.factorsOf(id),
        totp: !totp ? 'none' : totp.confirmed_at ? 'active' : 'pending',
        recovery_codes_left: await repos.recoveryCodes.countUnused(id),
      }
    },

    async startTotpEnrolment(context) {
      const { id } = actorOf(context)
      const user = await repos.users.findById(id)
      if (!user) throw accountGone()
      if ((await repos.totpFactors.find(id))?.confirmed_at) throw conflict(TOTP_ACTIVE)
      const secret = generateTotpSecret()
      const stored = encryption.encrypt(secret, totpSecretContext(id))
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

/** Changes that need the password again: new recovery codes, TOTP removed. */
function reauthenticatedChanges(deps: SecondFactorDependencies) {
  const { repos, audit } = deps
  return {
    async regenerateRecoveryCodes(context, password) {
      const { id } = actorOf(context)
      const noFactor = () => conflict('Recovery codes come with TOTP, which is not active on this account.')
      if (!(await repos.totpFactors.find(id))?.confirmed_at) throw noFactor()
      await reauthenticate(deps, context, password)
      return deps.transaction(async (txRepos) => {
        const codes = await replaceCodes(deps, txRepos, id)
        // Read once replaceAll has locked the user: TOTP disabled meanwhile rolls the new set back.
        if (!(await txRepos.totpFactors.find(id))?.confirmed_at) throw noFactor()
        const event = { event: 'mfa_recovery_codes_regenerated', outcome: 'success', userId: id } as const
        await audit.record(context, event, txRepos)
        return codes
      })
    },

    async disableTotp(context, password) {
      const { id } = actorOf(context)
      const none = () => notFound('There is no TOTP factor on this account.')
      if (!(await repos.totpFactors.find(id))) throw none()
      await reauthenticate(deps, context, password)
      const removed = await deps.transaction(async (txRepos) => {
        if (!(await txRepos.totpFactors.delete(id))) return false
        const codes = await txRepos.recoveryCodes.deleteAll(id)
        // Logins waiting for a second factor would have nothing left to finish with.
        await txRepos.mfaTokens.deleteForUser(id)
        const details = { recovery_codes_removed: codes }
        await audit.record(
          context,
          { event: 'mfa_totp_disabled', outcome: 'success', userId: id, details },
          txRepos,
        )
        return true
      })
      if (!removed) throw none()
    },
  } satisfies Partial<SecondFactorService>
}

export function createSecondFactorService(deps: SecondFactorDependencies): SecondFactorService {
  return {
    ...enrolment(deps),
    ...reauthenticatedChanges(deps),
    confirmTotp: (context, code) => confirmTotp(deps, context, code),
  }
}
