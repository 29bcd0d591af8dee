import { createHash } from 'node:crypto'
import {
  authenticationOptions,
  claimedChallengeOf,
  newChallenge,
  verifyAuthentication,
  WEBAUTHN_CHALLENGE_LIFETIME_SECONDS,
  type AuthenticationResponseJSON,
  type RelyingParty,
  type StoredCredential,
  type WebAuthnRefusal,
} from '../auth/webauthn.js'
import type { Config } from '../config.js'
import type { WebAuthnChallengePurpose } from '../db/database.js'
import type { Repositories } from '../repositories/index.js'
import type { PasskeyRecord } from '../repositories/passkeys.js'
import { dateOf, type Clock } from './clock.js'

/**
 * What every WebAuthn ceremony shares: who we are to authenticators, the server-side challenges
 * (issued, then spent once by whichever instance gets the answer), and the check of an assertion
 * against a stored passkey with its signature counter.
 */

const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex')

/** The key a credential is stored and found under: the SHA-256 of its base64url id. */
export const credentialHashOf = (credentialId: string) => sha256Hex(`webauthn-credential\n${credentialId}`)

const challengeHashOf = (challenge: string) => sha256Hex(`webauthn-challenge\n${challenge}`)

export function relyingPartyOf(config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins'>): RelyingParty {
  return { id: config.webauthnRpId, name: config.webauthnRpId, origins: config.webauthnOrigins }
}

export interface CeremonyDependencies {
  repos: Repositories
  clock: Clock
}

/** A new challenge for `purpose` (and the account, when one is known), stored as its hash. */
export async function issueChallenge(
  deps: CeremonyDependencies,
  purpose: WebAuthnChallengePurpose,
  userId: number | null,
  userHandle?: string,
): Promise<string> {
  const now = dateOf(deps.clock)
  // Housekeeping on the way: expired challenges are worth nothing, and the index finds them.
  await deps.repos.webauthnChallenges.deleteExpired(now)
  const challenge = newChallenge()
  await deps.repos.webauthnChallenges.insert({
    challengeHash: challengeHashOf(challenge),
    purpose,
    userId,
    // Stryker disable next-line ConditionalExpression: an undefined userHandle is stored as the absent one is (null).
    ...(userHandle === undefined ? {} : { userHandle }),
    now,
    expiresAt: new Date(now.getTime() + WEBAUTHN_CHALLENGE_LIFETIME_SECONDS * 1000),
  })
  return challenge
}

/**
 * Spends the challenge an answer claims to answer: the challenge (and the user handle a
 * registration's carried), when it was issued for this purpose and account and is still unexpired
 * and unused; undefined otherwise. Spent before the answer is verified, so a challenge never
 * serves two answers, good or bad.
 */
export async function spendChallenge(
  deps: CeremonyDependencies,
  answer: { response: { clientDataJSON: string } },
  purpose: WebAuthnChallengePurpose,
  userId: number | null,
): Promise<{ challenge: string; userHandle: string | null } | undefined> {
  const challenge = claimedChallengeOf(answer)
  // Stryker disable next-line ConditionalExpression: without it the digest of "undefined" is looked up, which no issued challenge has.
  if (challenge === undefined) return undefined
  const spent = await deps.repos.webauthnChallenges.consume(
    challengeHashOf(challenge),
    purpose,
    userId,
    dateOf(deps.clock),
  )
  return spent && { challenge, userHandle: spent.userHandle }
}

/** A stored passkey as the WebAuthn module checks it. */
export function storedCredentialOf(passkey: PasskeyRecord): StoredCredential {
  return {
    credentialId: passkey.credential_id,
    publicKey: new Uint8Array(Buffer.from(passkey.public_key, 'base64url')),
    counter: passkey.sign_count,
    transports: passkey.transports ? (passkey.transports.split(',') as StoredCredential['transports']) : [],
  }
}

/** Request options for a challenge: a password-less login's (no list), or an account's passkeys. */
export function requestOptions(
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins'>,
  passkeys: readonly PasskeyRecord[] | undefined,
  challenge: string,
) {
  const allow = passkeys?.map(storedCredentialOf)
  return authenticationOptions(relyingPartyOf(config), allow, allow ? 'preferred' : 'required', challenge)
}

export type AssertionOutcome = { ok: true } | { ok: false; reason: WebAuthnRefusal; message: string }

type AssertionDependencies = CeremonyDependencies & {
  config: Pick<Config, 'webauthnRpId' | 'webauthnOrigins'>
}

/** Checks an assertion of `passkey` for `challenge`, recording nothing: the new counter, or why not. */
export function verifyAssertion(
  deps: AssertionDependencies,
  passkey: PasskeyRecord,
  answer: AuthenticationResponseJSON,
  challenge: string,
  requireUserVerification: boolean,
) {
  return verifyAuthentication(
    relyingPartyOf(deps.config),
    answer,
    challenge,
    storedCredentialOf(passkey),
    requireUserVerification,
  )
}

/**
 * Records a verified assertion: the new signature counter, written only over the counter the check
 * read, so that of two assertions checked against one counter the second is refused as a clone's
 * would be (when the authenticator counts at all: repositories/passkeys.ts recordUse).
 */
export async function recordAssertion(
  deps: CeremonyDependencies,
  passkey: PasskeyRecord,
  newCounter: number,
): Promise<AssertionOutcome> {
  const recorded = await deps.repos.passkeys.recordUse(
    passkey.id,
    passkey.sign_count,
    newCounter,
    dateOf(deps.clock),
  )
  if (recorded) return { ok: true }
  return {
    ok: false,
    reason: 'counter',
    message: 'This passkey was used by another request at the same moment: try again.',
  }
}

/** Checks an assertion of `passkey` for `challenge`, and records its use (verifyAssertion, recordAssertion). */
export async function checkAssertion(
  deps: AssertionDependencies,
  passkey: PasskeyRecord,
  answer: AuthenticationResponseJSON,
  challenge: string,
  requireUserVerification: boolean,
): Promise<AssertionOutcome> {
  const result = await verifyAssertion(deps, passkey, answer, challenge, requireUserVerification)
  return result.ok ? recordAssertion(deps, passkey, result.newCounter) : result
}
