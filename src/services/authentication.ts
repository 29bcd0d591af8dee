import type { KnownSessions } from '../auth/known-sessions.js'
import type { RevocationList } from '../auth/revocation.js'
import { TokenError, type AccessTokenClaims, type Role, type TokenService } from '../auth/tokens.js'
import type { Repositories } from '../repositories/index.js'
import type { UserRecord } from '../repositories/users.js'
import type { Actor } from './context.js'
import { accountGone, forbidden, unauthenticated } from './errors.js'

const SESSION_ENDED = 'The session has ended; log in again'

export interface AuthenticationService {
  /**
   * The caller of a bearer token (undefined: the request had none): a valid access token of a
   * session the server issued to that user and did not revoke, else unauthenticated. Revocation
   * is checked in the revocation list; the session is read from the database once per instance
   * (known sessions).
   */
  authenticate(token: string | undefined): Promise<Actor>
  /** The caller's account, read from the database (unauthenticated when it no longer exists or is inactive). */
  currentUser(actor: Actor): Promise<UserRecord>
  /** The caller has this role, else forbidden. */
  requireRole(actor: Actor | undefined, role: Role): void
}

export interface AuthenticationDependencies {
  repos: Repositories
  tokens: Pick<TokenService, 'verifyAccessToken'>
  revocations: Pick<RevocationList, 'isRevoked'>
  knownSessions: KnownSessions
}

export function createAuthenticationService(deps: AuthenticationDependencies): AuthenticationService {
  const { repos, tokens, revocations, knownSessions } = deps

  async function verify(token: string): Promise<AccessTokenClaims> {
    try {
      return await tokens.verifyAccessToken(token)
    } catch (error) {
      if (error instanceof TokenError) throw unauthenticated(error.message, true)
      throw error
    }
  }

  return {
    async authenticate(token) {
      if (token === undefined)
        throw unauthenticated('Not authenticated: send "Authorization: Bearer <access token>"', false)
      const claims = await verify(token)
      if (await revocations.isRevoked(claims.sid)) throw unauthenticated(SESSION_ENDED, true)
      const session = await knownSessions.check(claims.sid, claims.user_id)
      if (session === 'revoked') throw unauthenticated(SESSION_ENDED, true)
      if (session === 'unknown') throw unauthenticated(new TokenError('invalid').message, true)
      return { id: claims.user_id, role: claims.role, sessionId: claims.sid, amr: claims.amr }
    },

    async currentUser(actor) {
      const user = await repos.users.findById(actor.id)
      if (!user || !user.is_active) throw accountGone()
      return user
    },

    requireRole(actor, role) {
      if (actor?.role !== role) throw forbidden(`This needs the ${role} role`)
    },
  }
}
