import type { DataEncryption } from '../auth/data-encryption.js'
import { hashRecoveryCode, normalizeRecoveryCode } from '../auth/recovery-codes.js'
import { verifyTotpCode } from '../auth/totp.js'
import type { AuthenticationResponseJSON } from '../auth/webauthn.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import { dateOf, type Clock } from './clock.js'
import type { SecondFactor } from './factor-rules.js'
import { LOGIN_METHODS } from './session-tokens.js'
import { checkAssertion, credentialHashOf, spendChallenge } from './webauthn-ceremonies.js'

/**
 * Checking and spending the proof of a second factor, for a login that owes one (mfa-login.ts)
 * and for a re-authentication (reauthentication.ts): a TOTP code, a recovery code or a passkey
 * assertion.
 */

/** What a client sends as its second factor. */
export type SecondFactorProof =
  { code: string } | { recoveryCode: string } | { passkey: AuthenticationResponseJSON }

/** The context every TOTP secret is encrypted with: a secret copied to another user's row does not decrypt. */
export const totpSecretContext = (userId: number) => `totp:user:${userId}`

const WRONG_CODE = 'The code is not right, or was already used.'

export const factorOf = (proof: SecondFactorProof): SecondFactor =>
  'code' in proof ? 'totp' : 'recoveryCode' in proof ? 'recovery_code' : 'passkey'

export interface ProofDependencies {
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins'>
  repos: Repositories
  encryption: DataEncryption
  clock: Clock
}

/**
 * A proof ready to be spent. A passkey's challenge is spent first, on its own: whatever happens
 * to the transaction that then checks the assertion, the challenge has served its one answer.
 */
export type PreparedProof =
  | { code: string }
  | { recoveryCode: string }
  | { passkey: AuthenticationResponseJSON; challenge: string | undefined }

export async function prepareProof(
  deps: ProofDependencies,
  userId: number,
  proof: SecondFactorProof,
): Promise<PreparedProof> {
  if (!('passkey' in proof)) return proof
  const spent = await spendChallenge(deps, proof.passkey, 'second_factor', userId)
  return { passkey: proof.passkey, challenge: spent?.challenge }
}

export type ProofOutcome = { ok: true; amr: readonly string[] } | { ok: false; detail: string }

const PASSKEY_CHALLENGE =
  'This passkey answer is not to a current challenge of this login (unknown, used or expired): ask for new options.'
const PASSKEY_UNKNOWN = 'This passkey is not one of this account’s.'

/** Checks a prepared passkey assertion against the account's passkey it names. */
async function spendPasskey(
  deps: ProofDependencies,
  repos: Repositories,
  userId: number,
  proof: Extract<PreparedProof, { passkey: unknown }>,
): Promise<ProofOutcome> {
  if (proof.challenge === undefined) return { ok: false, detail: PASSKEY_CHALLENGE }
  const passkey = await repos.passkeys.findByCredential(credentialHashOf(proof.passkey.id))
  if (passkey?.user_id !== userId) return { ok: false, detail: PASSKEY_UNKNOWN }
  // A second factor after the password: the key's possession is the factor, verification optional.
  const outcome = await checkAssertion({ ...deps, repos }, passkey, proof.passkey, proof.challenge, false)
  return outcome.ok ? { ok: true, amr: LOGIN_METHODS.passkey } : { ok: false, detail: outcome.message }
}

/**
 * Checks and spends the proof with `repos` (the caller's transaction): the login methods it
 * proves, or why it was refused. A TOTP code's time step is recorded by one conditional UPDATE
 * (a code, or an older one, never works twice), a recovery code is spent by one.
 */
export async function spendProof(
  deps: ProofDependencies,
  repos: Repositories,
  userId: number,
  proof: PreparedProof,
): Promise<ProofOutcome> {
  const refused = { ok: false, detail: WRONG_CODE } as const
  if ('passkey' in proof) return spendPasskey(deps, repos, userId, proof)
  const now = dateOf(deps.clock)
  if ('code' in proof) {
    const factor = await repos.totpFactors.find(userId)
    if (!factor?.confirmed_at) return refused
    const secret = deps.encryption.decrypt(factor.secret_encrypted, totpSecretContext(userId))
    const step = verifyTotpCode(secret, proof.code, now)
    // Stryker disable next-line ConditionalExpression: acceptStep(null) updates no row (`last_used_step < null` is never true).
    if (step === null) return refused
    if (!(await repos.totpFactors.acceptStep(userId, step))) return refused
    return { ok: true, amr: LOGIN_METHODS.totp }
  }
  const code = normalizeRecoveryCode(proof.recoveryCode)
  if (code === null || !(await repos.recoveryCodes.consume(userId, hashRecoveryCode(code), now)))
    return refused
  return { ok: true, amr: LOGIN_METHODS.recoveryCode }
}
