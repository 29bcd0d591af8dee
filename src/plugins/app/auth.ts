import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import {
  createTokenService,
  TokenError,
  type AccessTokenClaims,
  type TokenService,
} from '../../auth/tokens.js'
import { forbidden, unauthorized } from '../../errors.js'
import type { UserRecord } from '../../repositories/users.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    /** onRequest hook: a valid bearer token of an active user, else 401. Sets request.user. */
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** preHandler hook (after authenticate): the user has this role, else 403. */
    requireRole(role: UserRecord['role']): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** The authenticated user; set by app.authenticate (null on public routes). */
    user: UserRecord
    /** The verified claims of the access token. */
    auth: AccessTokenClaims
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i

/** The bearer token of a request: undefined when there is no Authorization header at all. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined) return undefined
  const match = BEARER.exec(header)
  if (!match?.[1]) throw unauthorized('The Authorization header must be "Bearer <access token>"', true)
  return match[1]
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const tokens = await createTokenService(config)
    app.decorate('tokens', tokens)
    app.decorateRequest('user', null as unknown as UserRecord)
    app.decorateRequest('auth', null as unknown as AccessTokenClaims)

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const token = bearerToken(request)
      if (token === undefined)
        throw unauthorized('Not authenticated: send "Authorization: Bearer <access token>"', false)
      let claims: AccessTokenClaims
      try {
        claims = await tokens.verifyAccessToken(token)
      } catch (error) {
        if (error instanceof TokenError) throw unauthorized(error.message, true)
        throw error
      }
      const user = await app.repos.users.findById(claims.user_id)
      // A deleted or deactivated account loses access at once, whatever its tokens say.
      if (!user || !user.is_active) throw unauthorized('The access token is invalid', true)
      request.user = user
      request.auth = claims
    })

    app.decorate('requireRole', (role: UserRecord['role']) => async (request: FastifyRequest) => {
      if (request.user?.role !== role) throw forbidden(`This needs the ${role} role`)
    })
  },
  { name: 'auth', dependencies: ['db'] },
)
