import { randomUUID } from 'node:crypto'
import { generateOpaqueToken } from '../auth/opaque-tokens.js'
import type { RevocationList } from '../auth/revocation.js'
import type { Role } from '../auth/tokens.js'
import type { NewSessionRow } from '../db/database.js'
import type { Repositories } from '../repositories/index.js'
import type { SessionRecord } from '../repositories/sessions.js'
import { dateOf } from './clock.js'
import type { Actor, RequestContext } from './context.js'
import { notFound, unauthenticated } from './errors.js'
import {
  storedMethods,
  refreshRotation,
  tokenIssuing,
  type SessionTokensDependencies,
  type TokenPair,
} from './session-tokens.js'

export type { TokenPair } from './session-tokens.js'

export type RevocationReason =
  | 'logout'
  | 'revoked_by_user'
  | 'password_changed'
  | 'password_reset'
  | 'refresh_token_reuse'
  | 'user_deactivated'
  | 'user_deleted'
  | 'role_changed'
  /** An admin removed the user's second factors. */
  | 'mfa_reset'

/** Where a session was started from (a RequestContext is one). */
export type ClientInfo = Pick<RequestContext, 'ip' | 'userAgent'>

/** One of the caller's sessions, and whether it is the one the request came with. */
export interface OwnSession extends SessionRecord {
  current: boolean
}

export interface SessionService {
  /**
   * A new session (a login) from the client of the request: its first access and refresh tokens.
   * `amr` says how the login was authenticated (LOGIN_METHODS); its tokens and refreshes carry it.
   */
  start(user: { id: number; role: Role }, client: ClientInfo, amr: readonly string[]): Promise<TokenPair>
  /**
   * Rotates a refresh token: the presented one dies, a new pair is issued. A duplicate (the same
   * token again right after its rotation) gets the same new refresh token; a later reuse ends the
   * session.
   */
  refresh(refreshToken: string, context: RequestContext): Promise<TokenPair>
  /** Ends sessions now, in the database and for their outstanding access tokens. */
  endSessions(repos: Repositories, sessionIds: readonly string[], reason: RevocationReason): Promise<void>
  /** Ends every session of a user (but `keep`, when given). */
  endAllSessionsOf(
    repos: Repositories,
    userId: number,
    reason: RevocationReason,
    keep?: string,
  ): Promise<void>
  /** Ends the caller's own session (their logout). */
  logout(context: RequestContext): Promise<void>
  /** The caller's sessions that can still be used, most recently used first. */
  listOwnSessions(context: RequestContext): Promise<OwnSession[]>
  /** Ends one of the caller's sessions; another user's session is not found, as if it did not exist. */
  endOwnSession(context: RequestContext, sessionId: string): Promise<void>
}

export interface SessionServiceDependencies extends SessionTokensDependencies {
  revocations: Pick<RevocationList, 'revoke'>
}

/** The authenticated caller of a context: the routes that end or list own sessions require one. */
function actorOf(context: RequestContext): Actor {
  // Stryker disable next-line all: the routes that reach these rules authenticate first; this only guards a caller that forgot.
  if (!context.actor) throw unauthenticated('Not authenticated', false)
  return context.actor
}

export function createSessionService(deps: SessionServiceDependencies): SessionService {
  const { repos, transaction, audit } = deps
  const issuing = tokenIssuing(deps)
  const refreshing = refreshRotation(deps, issuing, (...args) => service.endSessions(...args))

  const service: SessionService = {
    async start(user, client, amr) {
      const now = dateOf(deps.clock)
      const sessionId = randomUUID()
      const expiresAt = issuing.expiryOf(now, now)
      return transaction(async (repos) => {
        await repos.sessions.insert({
          ...newSession(sessionId, user.id, client, now, expiresAt),
          amr: storedMethods(amr),
          // A login that asked for a second factor proved one now (services/reauthentication.ts).
          factor_verified_at: amr.includes('mfa') ? now : null,
        })
        return issuing.issuePair(repos, user, sessionId, generateOpaqueToken(), now, expiresAt, amr)
      })
    },

    refresh: (refreshToken, context) => refreshing.refresh(refreshToken, context),

    async endSessions(repos, sessionIds, reason) {
      // Stryker disable next-line ConditionalExpression: the repository and the list do nothing for none either; this saves the calls.
      if (sessionIds.length === 0) return
      await repos.sessions.revoke([...sessionIds], reason, dateOf(deps.clock))
      // Published only once the revocation is committed: a change that rolls back must not
      // leave its sessions refused for the lifetime of their tokens.
      await repos.afterCommit(() => deps.revocations.revoke(sessionIds))
    },

    async endAllSessionsOf(repos, userId, reason, keep) {
      const ids = (await repos.sessions.activeIds(userId)).filter((id) => id !== keep)
      await service.endSessions(repos, ids, reason)
    },

    async logout(context) {
      const actor = actorOf(context)
      await service.endSessions(repos, [actor.sessionId], 'logout')
      await audit.record(context, {
        event: 'logout',
        outcome: 'success',
        userId: actor.id,
        sessionId: actor.sessionId,
      })
    },

    async listOwnSessions(context) {
      const actor = actorOf(context)
      const sessions = await repos.sessions.listActive(actor.id, dateOf(deps.clock))
      return sessions.map((session) => ({ ...session, current: session.id === actor.sessionId }))
    },

    async endOwnSession(context, sessionId) {
      const actor = actorOf(context)
      const session = await repos.sessions.findById(sessionId)
      if (!session || session.user_id !== actor.id || session.revoked_at !== null)
        throw notFound('You have no active session with this id.')
      await service.endSessions(repos, [session.id], 'revoked_by_user')
      await audit.record(context, {
        event: 'session_revoked',
        outcome: 'success',
        userId: actor.id,
        sessionId: session.id,
      })
    },
  }
  return service
}

function newSession(
  id: string,
  userId: number,
  client: ClientInfo,
  now: Date,
  expiresAt: Date,
): NewSessionRow {
  return {
    id,
    user_id: userId,
    created_at: now,
    last_used_at: now,
    expires_at: expiresAt,
    user_agent: client.userAgent?.slice(0, 512) ?? null,
    ip: client.ip,
  }
}
