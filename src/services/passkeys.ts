import { randomBytes } from 'node:crypto'
import {
  registrationOptions,
  verifyRegistration,
  type PublicKeyCredentialCreationOptionsJSON,
  type RegistrationResult,
  type RegistrationResponseJSON,
} from '../auth/webauthn.js'
import type { Config } from '../config.js'
import type { AccountEmails } from './account-emails.js'
import { isUniqueViolation } from '../db/errors.js'
import type { Repositories } from '../repositories/index.js'
import type { PasskeyRecord } from '../repositories/passkeys.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, conflict, invalidInput, notFound } from './errors.js'
import type { Reauthentication } from './reauthentication.js'
import { issueRecoveryCodesIfNone, type FactorRules } from './factor-rules.js'
import {
  credentialHashOf,
  issueChallenge,
  relyingPartyOf,
  spendChallenge,
  storedCredentialOf,
} from './webauthn-ceremonies.js'

/** A passkey as its owner sees it: never its key or credential id. */
export interface PasskeyView {
  id: number
  name: string
  created_at: Date
  last_used_at: Date | null
  /** Synced between devices (a passkey manager) or bound to one authenticator. */
  device_type: 'singleDevice' | 'multiDevice'
  backed_up: boolean
}

/** A new passkey, and the recovery codes of an account that had no second factor before. */
export interface PasskeyRegistration {
  passkey: PasskeyView
  /** Shown this once: set when this passkey is the account's first second factor. */
  recovery_codes?: string[]
}

export interface PasskeyService {
  /** Options for navigator.credentials.create(): a challenge for the caller's account, 5 minutes, once. */
  registrationOptions(context: RequestContext): Promise<PublicKeyCredentialCreationOptionsJSON>
  /** Verifies the browser's answer to those options and stores the passkey. */
  register(
    context: RequestContext,
    answer: RegistrationResponseJSON,
    name?: string,
  ): Promise<PasskeyRegistration>
  list(context: RequestContext): Promise<PasskeyView[]>
  rename(context: RequestContext, id: number, name: string): Promise<PasskeyView>
  /** Removes one of the caller's passkeys; the last one needs recent re-authentication. */
  remove(context: RequestContext, id: number, password: string | undefined): Promise<void>
}

export interface PasskeyDependencies {
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins' | 'requireMfaForAdmins'>
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  audit: AuditService
  clock: Clock
  reauthentication: Reauthentication
  factors: FactorRules
  notices: Pick<AccountEmails, 'sendSecurityNotice'>
}

export const viewOf = (passkey: PasskeyRecord): PasskeyView => ({
  id: passkey.id,
  name: passkey.name,
  created_at: passkey.created_at,
  last_used_at: passkey.last_used_at,
  device_type: passkey.device_type,
  backed_up: passkey.backed_up,
})

const NOT_FOUND = 'You have no passkey with this id.'

/** The name a passkey gets when its owner gives none: what it is, and when it came. */
function defaultName(deviceType: PasskeyView['device_type'], now: Date) {
  const kind = deviceType === 'multiDevice' ? 'Synced passkey' : 'Security key'
  return `${kind} added ${now.toISOString().slice(0, 10)}`
}

/**
 * The account's WebAuthn user id: the one its passkeys already carry, or the one of a registration
 * still under way (two tabs registering the account's first passkeys give both one handle), or a
 * new random one. Never the numeric user id, which would tell every site the authenticator is
 * used on who this is.
 */
async function userHandleOf(deps: PasskeyDependencies, userId: number, passkeys: readonly PasskeyRecord[]) {
  return (
    passkeys[0]?.user_handle ??
    (await deps.repos.webauthnChallenges.pendingUserHandle(userId, dateOf(deps.clock))) ??
    randomBytes(32).toString('base64url')
  )
}

async function registrationOptionsOf(deps: PasskeyDependencies, context: RequestContext) {
  const { id } = actorOf(context)
  const user = await deps.repos.users.findById(id)
  if (!user) throw accountGone()
  const passkeys = await deps.repos.passkeys.listForUser(id)
  const userHandle = await userHandleOf(deps, id, passkeys)
  const challenge = await issueChallenge(deps, 'registration', id, userHandle)
  return registrationOptions(
    relyingPartyOf(deps.config),
    { userHandle, name: user.email, displayName: user.name },
    passkeys.map(storedCredentialOf),
    challenge,
  )
}

/** Stores a verified passkey, with recovery codes when it is the account's first second factor. */
async function storePasskey(
  deps: PasskeyDependencies,
  context: RequestContext,
  result: Extract<RegistrationResult, { ok: true }>,
  userHandle: string,
  name: string | undefined,
): Promise<PasskeyRegistration> {
  const { id } = actorOf(context)
  const { credential } = result
  const now = dateOf(deps.clock)
  try {
    return await deps.transaction(async (txRepos) => {
      const passkeyId = await txRepos.passkeys.insert({
        user_id: id,
        credential_hash: credentialHashOf(credential.credentialId),
        credential_id: credential.credentialId,
        // The handle the options carried, which the authenticator now keeps with the credential.
        user_handle: userHandle,
        public_key: Buffer.from(credential.publicKey).toString('base64url'),
        sign_count: credential.counter,
        transports: credential.transports.join(','),
        name: name ?? defaultName(result.deviceType, now),
        device_type: result.deviceType,
        backed_up: result.backedUp,
        aaguid: result.aaguid,
        created_at: now,
      })
      if (passkeyId === undefined) throw accountGone()
      const codes = await issueRecoveryCodesIfNone(deps, txRepos, id)
      const details = { passkey_id: passkeyId }
      await deps.audit.record(
        context,
        { event: 'passkey_registered', outcome: 'success', userId: id, details },
        txRepos,
      )
      const stored = (await txRepos.passkeys.listForUser(id)).find((passkey) => passkey.id === passkeyId)
      return { passkey: viewOf(stored!), ...(codes ? { recovery_codes: codes } : {}) }
    })
  } catch (error) {
    if (isUniqueViolation(error))
      throw conflict('This passkey is already registered (to this account or another one).')
    throw error
  }
}

async function register(
  deps: PasskeyDependencies,
  context: RequestContext,
  answer: RegistrationResponseJSON,
  name: string | undefined,
): Promise<PasskeyRegistration> {
  const { audit } = deps
  const { id } = actorOf(context)
  const refuse = async (reason: string, message: string) => {
    await audit.record(context, {
      event: 'passkey_registration_failed',
      outcome: 'failure',
      userId: id,
      details: { reason },
    })
    return invalidInput(message, [{ in: 'body', field: 'response', message }])
  }
  const spent = await spendChallenge(deps, answer, 'registration', id)
  if (spent?.userHandle == null)
    throw await refuse(
      'challenge',
      'This answer is not to a current registration challenge of your account (unknown, used or expired): ask for new options.',
    )
  const result = await verifyRegistration(relyingPartyOf(deps.config), answer, spent.challenge)
  if (!result.ok) throw await refuse(result.reason, result.message)
  const registered = await storePasskey(deps, context, result, spent.userHandle, name)
  deps.notices.sendSecurityNotice(id, { kind: 'passkey_added', name: registered.passkey.name }, context.log)
  return registered
}

export function createPasskeyService(deps: PasskeyDependencies): PasskeyService {
  const { repos, audit } = deps
  return {
    registrationOptions: (context) => registrationOptionsOf(deps, context),
    register: (context, answer, name) => register(deps, context, answer, name),

    async list(context) {
      return (await repos.passkeys.listForUser(actorOf(context).id)).map(viewOf)
    },

    async rename(context, passkeyId, name) {
      const { id } = actorOf(context)
      if (!(await repos.passkeys.rename(id, passkeyId, name))) throw notFound(NOT_FOUND)
      const passkey = (await repos.passkeys.listForUser(id)).find((each) => each.id === passkeyId)
      if (!passkey) throw notFound(NOT_FOUND)
      await audit.record(context, {
        event: 'passkey_renamed',
        outcome: 'success',
        userId: id,
        details: { passkey_id: passkeyId },
      })
      return viewOf(passkey)
    },

    async remove(context, passkeyId, password) {
      const { id } = actorOf(context)
      const passkeys = await repos.passkeys.listForUser(id)
      const removing = passkeys.find((passkey) => passkey.id === passkeyId)
      if (!removing) throw notFound(NOT_FOUND)
      // A password is checked before the transaction (no argon2 while the user's row is locked);
      // whether this is the last passkey is decided in it, after the lock, so that two removals
      // at once cannot each leave the other one passkey and both skip re-authentication.
      if (password !== undefined) await deps.reauthentication.require(context, password)
      await deps.transaction(async (txRepos) => {
        if (!(await txRepos.passkeys.delete(id, passkeyId))) throw notFound(NOT_FOUND)
        if (password === undefined && (await txRepos.passkeys.countForUser(id)) === 0)
          await deps.reauthentication.require(context, undefined, txRepos)
        // Read after the delete has locked the user: what is left decides, whatever ran meanwhile.
        const left = await deps.factors.afterRemoval(txRepos, id)
        await audit.record(
          context,
          {
            event: 'passkey_removed',
            outcome: 'success',
            userId: id,
            details: { passkey_id: passkeyId, factors_left: left.length },
          },
          txRepos,
        )
      })
      deps.notices.sendSecurityNotice(id, { kind: 'passkey_removed', name: removing.name }, context.log)
    },
  }
}
