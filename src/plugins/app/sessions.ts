import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { generateOpaqueToken, hashOpaqueToken } from '../../auth/opaque-tokens.js'
import {
  createMemoryRevocationStore,
  createRedisRevocationStore,
  type RevocationStore,
} from '../../auth/revocation.js'
import type { Role } from '../../auth/tokens.js'
import { unauthorized } from '../../errors.js'
import type { Repositories } from './db.js'

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
  revocations: RevocationStore
  /** A new session (a login): its first access and refresh tokens. */
  start(user: { id: number; role: Role }, client: ClientInfo): Promise<TokenPair>
  /** Rotates a refresh token: the presented one dies, a new pair is issued. */
  refresh(refreshToken: string, request: FastifyRequest): Promise<TokenPair>
  /** Ends sessions now, in the database and for their outstanding access tokens. */
  revoke(repos: Repositories, sessionIds: readonly string[], reason: RevocationReason): Promise<void>
  /** Ends every session of a user (but `keep`, when given). */
  revokeAllOf(repos: Repositories, userId: number, reason: RevocationReason, keep?: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
  }
}

const INVALID_REFRESH = 'The refresh token is invalid or expired; log in again.'

/** How long after its rotation a refresh token presented again is taken for a duplicate request. */
const DUPLICATE_REFRESH_WINDOW_MS = 10_000

export default fp<{ config: Config }>(
  async (app, { config }) => {
    // A revoked session's access tokens live at most this long (plus a minute of clock skew).
    const revocationTtlMs = (config.accessTokenExpireMinutes * 60 + 60) * 1000
    // The set is a copy of the database's recent revocations, rebuilt from it whenever it may have
    // lost some: at start (a restarted process must not forget a logout) and when Redis lost them.
    const revokedSince = async (since: Date) =>
      (await app.repos.sessions.revokedSince(since)).map((row) => ({
        sessionId: row.id,
        revokedAt: row.revoked_at,
      }))
    const revocations = app.redis
      ? createRedisRevocationStore(app.redis, revocationTtlMs, config.redisKeyPrefix, { revokedSince })
      : createMemoryRevocationStore(revocationTtlMs, { revokedSince })
    app.addHook('onClose', async () => revocations.close())
    await revocations.restore().catch((error: unknown) => {
      // The memory set cannot be completed later: starting without it would forget logouts.
      if (revocations.kind === 'memory') throw error
      // Redis away: checks go to the database until it is back and the set is restored.
      app.log.warn(
        { err: error },
        'the revocation set could not be restored yet; checking sessions in the database',
      )
    })

    const refreshLifetimeMs = config.refreshTokenExpireDays * 24 * 60 * 60 * 1000
    const maxLifetimeMs = config.sessionMaxLifetimeDays * 24 * 60 * 60 * 1000
    const userAgentOf = (client: ClientInfo) => client.userAgent?.slice(0, 512) ?? null

    /**
     * Where a session used now ends: a refresh lifetime away, but never past its absolute end,
     * however active it is (ASVS 5.0 V10.4.8). Without that bound every refresh would extend it forever.
     */
    const expiryOf = (createdAt: Date, now: Date) =>
      new Date(Math.min(now.getTime() + refreshLifetimeMs, createdAt.getTime() + maxLifetimeMs))

    async function issuePair(
      repos: Repositories,
      user: { id: number; role: Role },
      sessionId: string,
      now: Date,
      expiresAt: Date,
    ) {
      const refreshToken = generateOpaqueToken()
      await repos.sessions.insertRefreshToken(hashOpaqueToken(refreshToken), sessionId, now, expiresAt)
      const access = await app.tokens.issueAccessToken(user, sessionId)
      return {
        access_token: access.token,
        token_type: 'bearer' as const,
        expires_in: access.expiresIn,
        refresh_token: refreshToken,
      }
    }

    const service: SessionService = {
      revocations,

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
          return issuePair(repos, user, sessionId, now, expiresAt)
        })
      },

      async refresh(refreshToken, request) {
        const tokenHash = hashOpaqueToken(refreshToken)
        const now = new Date()
        const found = await app.repos.sessions.findRefreshToken(tokenHash)
        if (!found) throw unauthorized(INVALID_REFRESH, false)
        if (found.used_at) {
          // The loser of two concurrent refreshes (two tabs, a retried request) often reads the
          // token after the winner used it. Within seconds of that, and while the session has not
          // moved on (its newest token is unused), it is refused without ending the session.
          const duplicate =
            now.getTime() - found.used_at.getTime() < DUPLICATE_REFRESH_WINDOW_MS &&
            !(await app.repos.sessions.usedAfter(found.session_id, found.used_at))
          if (duplicate) {
            await app.recordSecurityEvent(request, {
              event: 'refresh_token_duplicate',
              outcome: 'failure',
              userId: found.user_id,
              sessionId: found.session_id,
            })
            throw unauthorized(INVALID_REFRESH, false)
          }
          // Otherwise a rotated token came back: either the client or a thief holds a copy. End the
          // session so that neither can go on with it (OAuth 2.0 Security BCP, refresh token rotation).
          await service.revoke(app.repos, [found.session_id], 'refresh_token_reuse')
          await app.recordSecurityEvent(request, {
            event: 'refresh_token_reuse',
            outcome: 'blocked',
            userId: found.user_id,
            sessionId: found.session_id,
          })
          throw unauthorized(INVALID_REFRESH, false)
        }
        if (
          found.revoked_at ||
          found.session_expires_at <= now ||
          found.token_expires_at <= now ||
          found.session_created_at.getTime() + maxLifetimeMs <= now.getTime()
        )
          throw unauthorized(INVALID_REFRESH, false)

        return app.transaction(async (repos) => {
          // Of two concurrent refreshes with one token, only one claims it; the other is refused
          // without ending the session (it is a duplicate, not a replay seen after the fact).
          if (!(await repos.sessions.claimRefreshToken(tokenHash, now)))
            throw unauthorized(INVALID_REFRESH, false)
          const user = found.user_id === null ? undefined : await repos.users.findById(found.user_id)
          if (!user || !user.is_active) throw unauthorized(INVALID_REFRESH, false)
          const expiresAt = expiryOf(found.session_created_at, now)
          await repos.sessions.touch(found.session_id, now, expiresAt)
          return issuePair(repos, user, found.session_id, now, expiresAt)
        })
      },

      async revoke(repos, sessionIds, reason) {
        if (sessionIds.length === 0) return
        await repos.sessions.revoke([...sessionIds], reason, new Date())
        // Published only once the revocation is committed: a change that rolls back must not
        // leave its sessions refused for the lifetime of their tokens.
        await repos.afterCommit(async () => {
          try {
            await revocations.revoke(sessionIds)
          } catch (error) {
            // The database has the revocation, and checks fall back to it while Redis is away; the
            // set is restored from the database when Redis answers again.
            app.log.warn(
              { err: error, sessionIds, reason },
              'the revocation set could not be updated; it will be restored from the database',
            )
          }
        })
      },

      async revokeAllOf(repos, userId, reason, keep) {
        const ids = (await repos.sessions.activeIds(userId)).filter((id) => id !== keep)
        await service.revoke(repos, ids, reason)
      },
    }
    app.decorate('sessions', service)
  },
  { name: 'sessions', dependencies: ['db', 'auth', 'redis', 'security-events'] },
)
