import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import {
  createRefreshTokenSuccessor,
  generateOpaqueToken,
  hashOpaqueToken,
} from '../../auth/opaque-tokens.js'
import type { Role } from '../../auth/tokens.js'
import { unauthenticated } from '../../services/errors.js'
import type { RefreshTokenLookup } from '../../repositories/sessions.js'
import type { Repositories } from '../../repositories/index.js'

export interface TokenPair {
  access_token: string
  token_type: 'bearer'
  expires_in: number
  refresh_token: string
}

export interface ClientInfo {
  userAgent: string | undefined
  ip: string
}

export type RevocationReason =
  | 'logout'
  | 'revoked_by_user'
  | 'password_changed'
  | 'password_reset'
  | 'refresh_token_reuse'
  | 'user_deactivated'
  | 'user_deleted'
  | 'role_changed'

export interface SessionService {
  /** A new session (a login): its first access and refresh tokens. */
  start(user: { id: number; role: Role }, client: ClientInfo): Promise<TokenPair>
  /**
   * Rotates a refresh token: the presented one dies, a new pair is issued. A duplicate (the same
   * token again right after its rotation) gets the same new refresh token; a later reuse ends the
   * session.
   */
  refresh(refreshToken: string, request: FastifyRequest): Promise<TokenPair>
  /** Ends sessions now, in the database and for their outstanding access tokens. */
  endSessions(repos: Repositories, sessionIds: readonly string[], reason: RevocationReason): Promise<void>
  /** Ends every session of a user (but `keep`, when given). */
  endAllSessionsOf(
    repos: Repositories,
    userId: number,
    reason: RevocationReason,
    keep?: string,
  ): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
  }
}

const INVALID_REFRESH = 'The refresh token is invalid or expired; log in again.'

/**
 * How long after its rotation a refresh token presented again is answered as a duplicate request
 * (with the same successor) rather than taken for reuse. Long enough for a retried request or a
 * second tab; short against the minutes between a client's refreshes (docs/security.md).
 */
const DUPLICATE_REFRESH_WINDOW_MS = 10_000

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const refreshLifetimeMs = config.refreshTokenExpireDays * 24 * 60 * 60 * 1000
    const maxLifetimeMs = config.sessionMaxLifetimeDays * 24 * 60 * 60 * 1000
    const successorOf = createRefreshTokenSuccessor(config.secretKey)
    const userAgentOf = (client: ClientInfo) => client.userAgent?.slice(0, 512) ?? null

    /**
     * Where a session used now ends: a refresh lifetime away, but never past its absolute end,
     * however active it is (ASVS 5.0 V10.4.8). Without that bound every refresh would extend it forever.
     */
    const expiryOf = (createdAt: Date, now: Date) =>
      new Date(Math.min(now.getTime() + refreshLifetimeMs, createdAt.getTime() + maxLifetimeMs))

    /** The session of a refresh token can still be refreshed: not ended, not expired, not too old. */
    const refreshable = (token: RefreshTokenLookup, now: Date) =>
      token.revoked_at === null &&
      token.session_expires_at > now &&
      token.token_expires_at > now &&
      token.session_created_at.getTime() + maxLifetimeMs > now.getTime()

    /** A new access token of the session, handed out with `refreshToken`. */
    async function pairWith(
      user: { id: number; role: Role },
      sessionId: string,
      refreshToken: string,
    ): Promise<TokenPair> {
      const access = await app.tokens.issueAccessToken(user, sessionId)
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
    ) {
      await repos.sessions.insertRefreshToken(hashOpaqueToken(refreshToken), sessionId, now, expiresAt)
      return pairWith(user, sessionId, refreshToken)
    }

    /** Redeems an unused refresh token; undefined when a concurrent request with it claimed it first. */
    async function rotate(refreshToken: string, found: RefreshTokenLookup) {
      const now = new Date()
      if (!refreshable(found, now)) throw unauthenticated(INVALID_REFRESH, false)
      return app.transaction(async (repos) => {
        if (!(await repos.sessions.claimRefreshToken(hashOpaqueToken(refreshToken), now))) return undefined
        const user = found.user_id === null ? undefined : await repos.users.findById(found.user_id)
        if (!user || !user.is_active) throw unauthenticated(INVALID_REFRESH, false)
        const expiresAt = expiryOf(found.session_created_at, now)
        await repos.sessions.touch(found.session_id, now, expiresAt)
        return issuePair(repos, user, found.session_id, successorOf(refreshToken), now, expiresAt)
      })
    }

    /**
     * A refresh token that was already rotated. Right after its rotation, while its successor is
     * unused, it is a duplicate (two tabs, a retried request, or a thief racing the client): it
     * gets that same successor, so both holders share one token and whichever rotates it next
     * exposes the other, whose next refresh is then a reuse. Refusing the duplicate instead would
     * hand the session to whoever came first, a thief included. Any other presentation is reuse:
     * a copy of the token exists, so the whole session ends (OAuth 2.0 Security BCP, refresh
     * token rotation).
     */
    async function answerUsed(
      refreshToken: string,
      found: RefreshTokenLookup,
      usedAt: Date,
      request: FastifyRequest,
    ): Promise<TokenPair> {
      const now = new Date()
      const successor = successorOf(refreshToken)
      const next = await app.repos.sessions.findRefreshToken(hashOpaqueToken(successor))
      const sinceRotationMs = now.getTime() - usedAt.getTime()
      const duplicate =
        sinceRotationMs < DUPLICATE_REFRESH_WINDOW_MS &&
        next?.session_id === found.session_id &&
        next.used_at === null
      if (!duplicate) {
        await service.endSessions(app.repos, [found.session_id], 'refresh_token_reuse')
        await app.recordSecurityEvent(request, {
          event: 'refresh_token_reuse',
          outcome: 'blocked',
          userId: found.user_id,
          sessionId: found.session_id,
        })
        throw unauthenticated(INVALID_REFRESH, false)
      }
      // The successor's row was read last: it says whether the session ended since the rotation.
      if (!refreshable(next, now)) throw unauthenticated(INVALID_REFRESH, false)
      const user = next.user_id === null ? undefined : await app.repos.users.findById(next.user_id)
      if (!user || !user.is_active) throw unauthenticated(INVALID_REFRESH, false)
      await app.recordSecurityEvent(request, {
        event: 'refresh_token_duplicate',
        outcome: 'success',
        userId: user.id,
        sessionId: found.session_id,
        details: { ms_since_rotation: sinceRotationMs },
      })
      return pairWith(user, found.session_id, successor)
    }

    const service: SessionService = {
      async start(user, client) {
        const now = new Date()
        const sessionId = randomUUID()
        const expiresAt = expiryOf(now, now)
        return app.transaction(async (repos) => {
          await repos.sessions.insert({
            id: sessionId,
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: expiresAt,
            user_agent: userAgentOf(client),
            ip: client.ip,
          })
          return issuePair(repos, user, sessionId, generateOpaqueToken(), now, expiresAt)
        })
      },

      async refresh(refreshToken, request) {
        let found = await app.repos.sessions.findRefreshToken(hashOpaqueToken(refreshToken))
        if (!found) throw unauthenticated(INVALID_REFRESH, false)
        if (!found.used_at) {
          const rotated = await rotate(refreshToken, found)
          if (rotated) return rotated
          // Another request with this token claimed it first and has committed (the claim waited
          // for it): the token now reads as used and its successor is stored, to answer with.
          found = await app.repos.sessions.findRefreshToken(hashOpaqueToken(refreshToken))
          if (!found?.used_at) throw unauthenticated(INVALID_REFRESH, false)
        }
        return answerUsed(refreshToken, found, found.used_at, request)
      },

      async endSessions(repos, sessionIds, reason) {
        if (sessionIds.length === 0) return
        await repos.sessions.revoke([...sessionIds], reason, new Date())
        // Published only once the revocation is committed: a change that rolls back must not
        // leave its sessions refused for the lifetime of their tokens.
        await repos.afterCommit(() => app.revocations.revoke(sessionIds))
      },

      async endAllSessionsOf(repos, userId, reason, keep) {
        const ids = (await repos.sessions.activeIds(userId)).filter((id) => id !== keep)
        await service.endSessions(repos, ids, reason)
      },
    }
    app.decorate('sessions', service)
  },
  { name: 'sessions', dependencies: ['db', 'auth', 'revocations', 'security-events'] },
)
