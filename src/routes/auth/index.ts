import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { loginLookup } from '../../auth/identifiers.js'
import { verifyAgainstDummyHash, verifyPassword } from '../../auth/passwords.js'
import type { Config } from '../../config.js'
import { forbidden, unauthenticated } from '../../services/errors.js'
import { bearerSecurity } from '../../http/openapi.js'
import { LoginForm, RefreshRequest, TokenResponse } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserPublic } from '../../schemas/users.js'

/** The same answer for an unknown account, a wrong password and a deactivated account. */
const BAD_CREDENTIALS = 'Incorrect username or password.'

const authRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  // Form bodies only here: the OAuth2 token endpoint is the one route that takes them.
  await app.register(formbody, { bodyLimit: 8 * 1024 })

  app.post(
    '/login',
    {
      preHandler: [
        app.limitAttempts<{ username: string }>('login', (request) => loginLookup(request.body.username).key),
      ],
      schema: {
        tags: ['auth'],
        summary: 'Log in (OAuth2 password grant)',
        description:
          'Form-encoded as OAuth2 clients send it (`username`, `password`, optional `grant_type=password`, `scope`, ' +
          '`client_id`, `client_secret`), or the same fields as JSON. `username` is the email or the user name, ' +
          'case-insensitive. Starts a session: see /sessions.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: LoginForm,
        response: { 200: TokenResponse, ...problemResponses(401, 403, 415, 422) },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const credentials = await app.repos.users.findCredentialsByLogin(loginLookup(username))
      const valid = credentials
        ? await verifyPassword(credentials.password_hash, password)
        : await verifyAgainstDummyHash(password)
      if (!credentials || !valid || !credentials.is_active) {
        // Never the login name that was tried: for an unknown account it may be a password typed
        // into the wrong field. An existing account is named by its id.
        await app.recordSecurityEvent(request, {
          event: 'login_failed',
          outcome: 'failure',
          userId: credentials?.id,
          details: { reason: !credentials ? 'unknown_account' : !valid ? 'wrong_password' : 'inactive' },
        })
        throw unauthenticated(BAD_CREDENTIALS, false)
      }
      // Said only to the holder of the right password, so it reveals nothing to anyone else.
      if (config.requireEmailVerification && !credentials.email_verified) {
        await app.recordSecurityEvent(request, {
          event: 'login_failed',
          outcome: 'failure',
          userId: credentials.id,
          details: { reason: 'email_not_verified' },
        })
        throw forbidden(
          'The email address of this account is not verified yet: follow the link in the email we sent.',
        )
      }
      const pair = await app.sessions.start(credentials, {
        userAgent: request.headers['user-agent'],
        ip: request.ip,
      })
      await app.recordSecurityEvent(request, {
        event: 'login_succeeded',
        outcome: 'success',
        userId: credentials.id,
      })
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return pair
    },
  )

  app.post(
    '/token/refresh',
    {
      preHandler: [app.limitAttempts('refresh', () => undefined)],
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new access and refresh token',
        description:
          'Rotation: the refresh token sent stops working and a new one comes back. The same token sent again ' +
          'within 10 seconds of its rotation, while the new one is still unused (a second tab, a retried ' +
          'request), gets that same new refresh token and a fresh access token. Sent again later, or once the ' +
          'new one was used, it ends its whole session (a copy exists: it may have been stolen) and answers 401. ' +
          'A session cannot be refreshed past SESSION_MAX_LIFETIME_DAYS (default 30) after its login.',
        body: RefreshRequest,
        response: { 200: TokenResponse, ...problemResponses(401, 415, 422) },
      },
    },
    async (request, reply) => {
      const pair = await app.sessions.refresh(request.body.refresh_token, request)
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return pair
    },
  )

  app.post(
    '/logout',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['auth'],
        summary: 'End the current session',
        description: 'Its refresh token and its access tokens stop working at once, on every instance.',
        security: bearerSecurity,
        response: { 204: Type.Null({ description: 'Logged out' }), ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      await app.sessions.endSessions(app.repos, [request.actor.sessionId], 'logout')
      await app.recordSecurityEvent(request, {
        event: 'logout',
        outcome: 'success',
        userId: request.actor.id,
        sessionId: request.actor.sessionId,
      })
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/current-user',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['auth'],
        summary: 'The authenticated user',
        security: bearerSecurity,
        response: { 200: UserPublic, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return app.currentUser(request)
    },
  )
}

export default authRoutes
