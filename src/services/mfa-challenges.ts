import { createHash } from 'node:crypto'
import { generateOpaqueToken, hashOpaqueToken } from '../auth/opaque-tokens.js'
import type { Repositories } from '../repositories/index.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { activeFactorsOf, type SecondFactor } from './factor-rules.js'

export type { SecondFactor } from './factor-rules.js'

/** How long a login that got past its password may take to give its second factor. */
export const MFA_TOKEN_LIFETIME_SECONDS = 5 * 60

/** What POST /login answers, inside its 403, to a login that owes a second factor. */
export interface MfaChallenge {
  mfa_token: string
  factors: SecondFactor[]
  expires_in: number
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url')

/**
 * What binds an mfa_token to the client that logged in: a digest of its User-Agent. Not the IP
 * address: a phone moving between networks, or a dual-stack client, changes address between two
 * requests seconds apart, which would fail honest logins. The User-Agent stays the same for one
 * client, so a token that leaks (a log, a proxy, a browser extension) does not work from another
 * program without also copying its User-Agent. It is a speed bump, not a secret: the token's
 * strength is its 256 random bits, single use and 5 minutes.
 */
// Stryker disable next-line StringLiteral: any fixed stand-in for a missing User-Agent binds the same way (both digests are made here).
export const clientBindingOf = (userAgent: string | undefined) => sha256(`user-agent\n${userAgent ?? ''}`)

/**
 * What binds an mfa_token to the password it was issued for: a digest of the stored argon2id hash,
 * which gets a new salt with every password change or reset. A token issued before the change then
 * no longer matches, so a password that was changed because it leaked cannot finish a login.
 */
export const credentialStampOf = (passwordHash: string) => sha256(`password-hash\n${passwordHash}`)

export interface MfaChallenges {
  /** The active second factors of a user (factor-rules.ts activeFactorsOf). */
  factorsOf(userId: number): Promise<SecondFactor[]>
  /** A new mfa_token for a login of `userId` whose password (`passwordHash`) was just verified. */
  issue(
    userId: number,
    passwordHash: string,
    client: Pick<RequestContext, 'userAgent'>,
    factors: SecondFactor[],
  ): Promise<MfaChallenge>
}

export function createMfaChallenges(deps: { repos: Repositories; clock: Clock }): MfaChallenges {
  const { repos, clock } = deps
  return {
    factorsOf: (userId) => activeFactorsOf(repos, userId),

    async issue(userId, passwordHash, client, factors) {
      const now = dateOf(clock)
      const token = generateOpaqueToken()
      // Housekeeping on the way: expired tokens are worth nothing, and the index finds them.
      await repos.mfaTokens.deleteExpired(now)
      await repos.mfaTokens.insert({
        token_hash: hashOpaqueToken(token),
        user_id: userId,
        client_hash: clientBindingOf(client.userAgent),
        credential_stamp: credentialStampOf(passwordHash),
        created_at: now,
        expires_at: new Date(now.getTime() + MFA_TOKEN_LIFETIME_SECONDS * 1000),
      })
      return { mfa_token: token, factors, expires_in: MFA_TOKEN_LIFETIME_SECONDS }
    },
  }
}
