import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import {
  createTokenService,
  TokenError,
  type AccessTokenClaims,
  type Role,
  type TokenService,
} from '../../auth/tokens.js'
import { createKnownSessions } from '../../auth/known-sessions.js'
import { accountGone, forbidden, unauthenticated } from '../../services/errors.js'
import type { UserRecord } from '../../repositories/users.js'
import type { Actor } from '../../services/context.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    /**
     * onRequest hook: a valid bearer token of a session the server issued to that user and did not
     * revoke, else 401. Sets request.actor. Revocation is checked in the
     * revocation list; the session is read from the database once per instance (known-sessions).
     */
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** The caller's account, read from the database (401 when it no longer exists or is inactive). */
    currentUser(request: FastifyRequest): Promise<UserRecord>
    /** preHandler hook (after authenticate): the caller has this role, else 403. */
    requireRole(role: Role): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** The authenticated caller; set by app.authenticate. */
    actor: Actor
  }
}

const SESSION_ENDED = 'The session has ended; log in again'

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i

/** The bearer token of a request: undefined when there is no Authorization header at all. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = BEARER.exec(header)
  if (!match?.[1]) throw unauthenticated('The Authorization header must be "Bearer <access token>"', true)
  return match[1]
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const tokens = await createTokenService(config)
    app.decorate('tokens', tokens)
    app.decorateRequest('actor', null as unknown as Actor)

    const knownSessions = createKnownSessions((sessionId) => app.repos.sessions.findById(sessionId))

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = bearerToken(request)
      if (token === undefined)
        throw unauthenticated('Not authenticated: send "Authorization: Bearer <access token>"', false)
      let claims: AccessTokenClaims
      try {
        claims = await tokens.verifyAccessToken(token)
      } catch (error) {
        if (error instanceof TokenError) throw unauthenticated(error.message, true)
        throw error
      }
      if (await app.revocations.isRevoked(claims.sid)) throw unauthenticated(SESSION_ENDED, true)
      const session = await knownSessions.check(claims.sid, claims.user_id)
      if (session === 'revoked') throw unauthenticated(SESSION_ENDED, true)
      if (session === 'unknown') throw unauthenticated(new TokenError('invalid').message, true)
      request.actor = { id: claims.user_id, role: claims.role, sessionId: claims.sid }
    })

    app.decorate('currentUser', async (request: FastifyRequest) => {
      const user = await app.repos.users.findById(request.actor.id)
      if (!user || !user.is_active) throw accountGone()
      return user
    })

    app.decorate('requireRole', (role: Role) => async (request: FastifyRequest) => {
      if (request.actor?.role !== role) throw forbidden(`This needs the ${role} role`)
    })
  },
  { name: 'auth', dependencies: ['db', 'revocations'] },
)
