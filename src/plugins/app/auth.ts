import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createKnownSessions } from '../../auth/known-sessions.js'
import { readFile } from 'node:fs/promises'
import { createDataEncryption, dataEncryptionKeysOf } from '../../auth/data-encryption.js'
import { createTokenService, type Role, type TokenService } from '../../auth/tokens.js'
import { createSigningKeys, type SigningKeys } from '../../services/signing-keys.js'
import type { UserRecord } from '../../repositories/users.js'
import { createAuthenticationService } from '../../services/authentication.js'
import { createEnrolmentPolicy } from '../../services/enrolment-policy.js'
import type { Actor } from '../../services/context.js'
import { bearerToken } from '../../http/bearer-token.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
    /** The keys tokens are signed and verified with, and their rotation (services/signing-keys.ts). */
    signingKeys: SigningKeys
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

export default fp<{ config: Config }>(
  async (app, { config }) => {
    const signingKeys = await createSigningKeys({
      config,
      keyFiles:
        config.jwtPrivateKeyFile && config.jwtPublicKeyFile
          ? {
              privatePem: await readFile(config.jwtPrivateKeyFile, 'utf8'),
              publicPem: await readFile(config.jwtPublicKeyFile, 'utf8'),
            }
          : undefined,
      repos: app.repos,
      transaction: (work) => app.transaction(work),
      encryption: createDataEncryption(dataEncryptionKeysOf(config)),
      clock: app.clock,
      onReloadError: (error) =>
        app.log.warn(
          { err: error },
          'signing keys: reading them again failed; the keys already read stay in use',
        ),
    })
    await signingKeys.start()
    app.decorate('signingKeys', signingKeys)
    const tokens = await createTokenService(config, signingKeys, app.clock)
    app.decorate('tokens', tokens)
    app.decorateRequest('actor', null as unknown as Actor)

    const authentication = createAuthenticationService({
      repos: app.repos,
      tokens,
      revocations: app.revocations,
      knownSessions: createKnownSessions((sessionId) => app.repos.sessions.findById(sessionId)),
    })

    const enrolment = createEnrolmentPolicy({ config, repos: app.repos })

    app.decorate('authenticate', async (request: FastifyRequest) => {
      request.actor = await authentication.authenticate(bearerToken(request))
      await enrolment.check(request.actor, request.routeOptions.config.beforeMfaEnrolment === true)
    })
    app.decorate('currentUser', (request: FastifyRequest) => authentication.currentUser(request.actor))
    app.decorate('requireRole', (role: Role) => async (request: FastifyRequest) => {
      authentication.requireRole(request.actor ?? undefined, role)
    })
  },
  { name: 'auth', dependencies: ['db', 'revocations'] },
)
