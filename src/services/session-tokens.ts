import { createRefreshTokenSuccessor, hashOpaqueToken } from '../auth/opaque-tokens.js'
import type { Role, TokenService } from '../auth/tokens.js'
import type { Config } from '../config.js'
import type { Repositories } from '../repositories/index.js'
import type { RefreshTokenLookup } from '../repositories/sessions.js'
import type { AuditService } from './audit.js'
import { dateOf, type Clock } from './clock.js'
import type { RequestContext } from './context.js'
import { unauthenticated } from './errors.js'

/**
 * A session's tokens (services/sessions.ts holds the sessions themselves): a new access token
 * with each refresh token, and the rotation of refresh tokens.
 */
export interface TokenPair {
  access_token: string
  token_type: 'bearer'
  expires_in: number
  refresh_token: string
}

export interface SessionTokensDependencies {
  config: Pick<Config, 'refreshTokenExpireDays' | 'sessionMaxLifetimeDays' | 'secretKey'>
  repos: Repositories
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  tokens: Pick<TokenService, 'issueAccessToken'>
  audit: AuditService
  clock: Clock
}

/** Ends sessions whose refresh token was reused (the session service's endSessions). */
type EndSessions = (
  repos: Repositories,
  sessionIds: readonly string[],
  reason: 'refresh_token_reuse',
) => Promise<void>

/**
 * How a login was authenticated, as RFC 8176 names the methods: the access tokens of its session
 * carry them as `amr`, and the session keeps them for every refresh.
 */
export const LOGIN_METHODS = {
  password: ['pwd'],
  /** Password and a TOTP code: "otp", and "mfa" (two factors) so a relying party checks one value. */
  totp: ['pwd', 'otp', 'mfa'],
  /** Password and a recovery code: RFC 8176 has no name for one; "mfa" says two factors were used. */
  recoveryCode: ['pwd', 'mfa'],
  /** Password and a passkey: "hwk", proof of possession of a (hardware- or platform-held) key. */
  passkey: ['pwd', 'hwk', 'mfa'],
  /**
   * A passkey alone, with user verification (a PIN or biometric on the authenticator): the key
   * ("hwk") and the user's verification ("user") are two factors, hence "mfa".
   */
  passkeyOnly: ['hwk', 'user', 'mfa'],
  /**
   * A sign-in with an OpenID Connect provider: "fed" (federated), as Microsoft Entra ID names it;
   * RFC 8176 registers no value for it. What the provider itself asked is its business.
   */
  external: ['fed'],
} as const satisfies Record<string, readonly string[]>

/** The methods as the sessions.amr column stores them, and back. */
export const storedMethods = (methods: readonly string[]) => methods.join(' ')
export const methodsOf = (stored: string) => stored.split(' ').filter(Boolean)

const INVALID_REFRESH = 'The refresh token is invalid or expired; log in again.'

/**
 * How long after its rotation a refresh token presented again is answered as a duplicate request
 * (with the same successor) rather than taken for reuse. Long enough for a retried request or a
 * second tab; short against the minutes between a client's refreshes (docs/security.md).
 */
const DUPLICATE_REFRESH_WINDOW_MS = 10_000

const DAY_MS = 24 * 60 * 60 * 1000

/** The lifetimes of a session, and what they make of one at a given time. */
function sessionLifetimes(config: SessionTokensDependencies['config']) {
  const refreshLifetimeMs = config.refreshTokenExpireDays * DAY_MS
  const maxLifetimeMs = config.sessionMaxLifetimeDays * DAY_MS
  return {
    /**
     * Where a session used now ends: a refresh lifetime away, but never past its absolute end,
     * however active it is (ASVS 5.0 V10.4.8). Without that bound every refresh would extend it forever.
     */
    expiryOf: (createdAt: Date, now: Date) =>
      new Date(Math.min(now.getTime() + refreshLifetimeMs, createdAt.getTime() + maxLifetimeMs)),
    /** The session of a refresh token can still be refreshed: not ended, not expired, not too old. */
    refreshable: (token: RefreshTokenLookup, now: Date) =>
      token.revoked_at === null &&
      token.session_expires_at > now &&
      token.token_expires_at > now &&
      token.session_created_at.getTime() + maxLifetimeMs > now.getTime(),
  }
}

type TokenIssuing = ReturnType<typeof tokenIssuing>

/** Issuing a session's tokens: a new access token, with a refresh token stored or already stored. */
export function tokenIssuing(deps: SessionTokensDependencies) {
  const lifetimes = sessionLifetimes(deps.config)

  /** A new access token of the session, handed out with `refreshToken`. */
  async function pairWith(
    user: { id: number; role: Role },
    sessionId: string,
    refreshToken: string,
    amr: readonly string[],
  ): Promise<TokenPair> {
    const access = await deps.tokens.issueAccessToken(user, sessionId, amr)
    return {
      access_token: access.token,
      token_type: 'bearer' as const,
      expires_in: access.expiresIn,
      refresh_token: refreshToken,
    }
  }

  async function issuePair(
    repos: Repositories,
    user: { id: number; role: Role },
    sessionId: string,
    refreshToken: string,
    now: Date,
    expiresAt: Date,
    amr: readonly string[],
  ) {
    await repos.sessions.insertRefreshToken(hashOpaqueToken(refreshToken), sessionId, now, expiresAt)
    return pairWith(user, sessionId, refreshToken, amr)
  }

  return { ...lifetimes, pairWith, issuePair }
}

/** Refresh token rotation: a used token's successor is derived from it (opaque-tokens). */
export function refreshRotation(
  deps: SessionTokensDependencies,
  issuing: TokenIssuing,
  endSessions: EndSessions,
) {
  const { repos, transaction } = deps
  const { refreshable, expiryOf, issuePair } = issuing
  const successorOf = createRefreshTokenSuccessor(deps.config.secretKey)
  const answerUsed = usedTokenAnswer(deps, issuing, endSessions, successorOf)

  /** Redeems an unused refresh token; undefined when a concurrent request with it claimed it first. */
  async function rotate(refreshToken: string, found: RefreshTokenLookup) {
    const now = dateOf(deps.clock)
    if (!refreshable(found, now)) throw unauthenticated(INVALID_REFRESH, false)
    return transaction(async (repos) => {
      if (!(await repos.sessions.claimRefreshToken(hashOpaqueToken(refreshToken), now))) return undefined
      // Stryker disable next-line ConditionalExpression: reading user null finds no user either; the check saves the read.
      const user = found.user_id === null ? undefined : await repos.users.findById(found.user_id)
      if (!user || !user.is_active) throw unauthenticated(INVALID_REFRESH, false)
      const expiresAt = expiryOf(found.session_created_at, now)
      await repos.sessions.touch(found.session_id, now, expiresAt)
      const amr = methodsOf(found.amr)
      return issuePair(repos, user, found.session_id, successorOf(refreshToken), now, expiresAt, amr)
    })
  }

  async function refresh(refreshToken: string, context: RequestContext): Promise<TokenPair> {
    let found = await repos.sessions.findRefreshToken(hashOpaqueToken(refreshToken))
    if (!found) throw unauthenticated(INVALID_REFRESH, false)
    if (!found.used_at) {
      const rotated = await rotate(refreshToken, found)
      if (rotated) return rotated
      // Another request with this token claimed it first and has committed (the claim waited
      // for it): the token now reads as used and its successor is stored, to answer with.
      found = await repos.sessions.findRefreshToken(hashOpaqueToken(refreshToken))
      if (!found?.used_at) throw unauthenticated(INVALID_REFRESH, false)
    }
    return answerUsed(refreshToken, found, found.used_at, context)
  }

  return { refresh }
}

/**
 * The answer to a refresh token that was already rotated. Right after its rotation, while its
 * successor is unused, it is a duplicate (two tabs, a retried request, or a thief racing the
 * client): it gets that same successor, so both holders share one token and whichever rotates it
 * next exposes the other, whose next refresh is then a reuse. Refusing the duplicate instead
 * would hand the session to whoever came first, a thief included. Any other presentation is
 * reuse: a copy of the token exists, so the whole session ends (OAuth 2.0 Security BCP, refresh
 * token rotation).
 */
function usedTokenAnswer(
  deps: SessionTokensDependencies,
  issuing: TokenIssuing,
  endSessions: EndSessions,
  successorOf: (refreshToken: string) => string,
) {
  const { repos, audit } = deps
  const { refreshable, pairWith } = issuing
  return async function answerUsed(
    refreshToken: string,
    found: RefreshTokenLookup,
    usedAt: Date,
    context: RequestContext,
  ): Promise<TokenPair> {
    const now = dateOf(deps.clock)
    const successor = successorOf(refreshToken)
    const next = await repos.sessions.findRefreshToken(hashOpaqueToken(successor))
    const sinceRotationMs = now.getTime() - usedAt.getTime()
    const duplicate =
      sinceRotationMs < DUPLICATE_REFRESH_WINDOW_MS &&
      // Stryker disable next-line ConditionalExpression,OptionalChaining: a successor is derived from its parent (HMAC) and stored in the parent's session; this only guards rows written otherwise.
      next?.session_id === found.session_id &&
      next.used_at === null
    if (!duplicate) {
      await endSessions(repos, [found.session_id], 'refresh_token_reuse')
      await audit.record(context, {
        event: 'refresh_token_reuse',
        outcome: 'blocked',
        userId: found.user_id,
        sessionId: found.session_id,
      })
      throw unauthenticated(INVALID_REFRESH, false)
    }
    // The successor's row was read last: it says whether the session ended since the rotation.
    if (!refreshable(next, now)) throw unauthenticated(INVALID_REFRESH, false)
    // Stryker disable next-line ConditionalExpression: reading user null finds no user either; the check saves the read.
    const user = next.user_id === null ? undefined : await repos.users.findById(next.user_id)
    if (!user || !user.is_active) throw unauthenticated(INVALID_REFRESH, false)
    await audit.record(context, {
      event: 'refresh_token_duplicate',
      outcome: 'success',
      userId: user.id,
      sessionId: found.session_id,
      details: { ms_since_rotation: sinceRotationMs },
    })
    return pairWith(user, found.session_id, successor, methodsOf(next.amr))
  }
}
