import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { loginLookup } from '../../auth/identifiers.js'
import type { Config } from '../../config.js'
import { authenticated, beforeMfaEnrolment } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import { noStore } from '../../http/no-store.js'
import { LoginForm, RefreshRequest, TokenResponse } from '../../schemas/auth.js'
import { LoginForbiddenProblem } from '../../schemas/mfa.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserPublic } from '../../schemas/users.js'
import type { TypedApp } from '../../http/typed-app.js'

/**
 * Logging in and out, refreshing tokens, and the caller's account: /logout and /current-user need
 * a token. The options carry the config as for every route family; these routes need none of it.
 */
const authRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  // Form bodies only here: the OAuth2 token endpoint is the one route that takes them.
  await app.register(formbody, { bodyLimit: 8 * 1024 })
  registerLogin(app)
  registerRefresh(app)
  await app.register(
    authenticated(async (api) => {
      registerLogout(api)
      registerCurrentUser(api)
    }),
  )
}

function registerLogin(app: TypedApp) {
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
          'case-insensitive. Starts a session: see /sessions. An account with a second factor gets no tokens ' +
          'here but a 403 `mfa_required` with an `mfa_token`: finish at POST /login/mfa.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: LoginForm,
        response: {
          200: TokenResponse,
          403: {
            description:
              'Either the email address is not verified yet, or the password is right and the account has a ' +
              'second factor: then the body has `error: "mfa_required"`, an `mfa_token` (single-use, ' +
              '`expires_in` seconds, only from this client) and the `factors` it accepts. A client that sees ' +
              '`mfa_required` asks the user for a code of their authenticator app (or a recovery code) and sends ' +
              '`{mfa_token, code}` or `{mfa_token, recovery_code}` to POST /login/mfa, which answers the tokens; when ' +
              '`factors` has `passkey`, it may instead get options from POST /login/mfa/passkey-options, pass them to ' +
              'navigator.credentials.get() and send `{mfa_token, passkey}`. ' +
              'Without `error`, the 403 is final (verify the email first).',
            content: { 'application/problem+json': { schema: LoginForbiddenProblem } },
          },
          ...problemResponses(401, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const pair = await app.login.withPassword(contextOf(request), username, password)
      noStore(reply)
      return pair
    },
  )
}

function registerRefresh(app: TypedApp) {
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
      const pair = await app.sessions.refresh(request.body.refresh_token, contextOf(request))
      noStore(reply)
      return pair
    },
  )
}

function registerLogout(api: TypedApp) {
  api.post(
    '/logout',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['auth'],
        summary: 'End the current session',
        description: 'Its refresh token and its access tokens stop working at once, on every instance.',
        response: { 204: Type.Null({ description: 'Logged out' }) },
      },
    },
    async (request, reply) => {
      await api.sessions.logout(contextOf(request))
      return reply.code(204).send(null)
    },
  )
}

function registerCurrentUser(api: TypedApp) {
  api.get(
    '/current-user',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['auth'],
        summary: 'The authenticated user',
        response: { 200: UserPublic },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const user = await api.currentUser(request)
      return { ...user, created_at: user.created_at.toISOString(), updated_at: user.updated_at.toISOString() }
    },
  )
}

export default authRoutes
