import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { randomUUID } from 'node:crypto'
import { normalizeLogin } from '../../auth/accounts.js'
import { verifyAgainstDummyHash, verifyPassword } from '../../auth/passwords.js'
import { unauthorized } from '../../errors.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { LoginForm, TokenResponse } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserPublic } from '../../schemas/users.js'

/** The same answer for an unknown account, a wrong password and a deactivated account. */
const BAD_CREDENTIALS = 'Incorrect username or password.'

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Form bodies only here: the OAuth2 token endpoint is the one route that takes them.
  await app.register(formbody, { bodyLimit: 8 * 1024 })
  // Fastify parses text/plain by default; a plain-text login is an unsupported media type (415).
  app.removeContentTypeParser('text/plain')

  app.post(
    '/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log in (OAuth2 password grant)',
        description:
          'Form-encoded as OAuth2 clients send it (`username`, `password`, optional `grant_type=password`, `scope`, ' +
          '`client_id`, `client_secret`), or the same fields as JSON. `username` is the email or the user name, ' +
          'case-insensitive.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: LoginForm,
        response: { 200: TokenResponse, ...problemResponses(401, 415, 422) },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const credentials = await app.repos.users.findCredentialsByLogin(normalizeLogin(username))
      const valid = credentials
        ? await verifyPassword(credentials.password_hash, password)
        : await verifyAgainstDummyHash(password)
      if (!credentials || !valid || !credentials.is_active) {
        request.log.info({ event: 'login_failed' }, 'login failed')
        throw unauthorized(BAD_CREDENTIALS, false)
      }
      const issued = await app.tokens.issueAccessToken(credentials.id, randomUUID())
      request.log.info({ event: 'login_succeeded', userId: credentials.id }, 'login succeeded')
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return { access_token: issued.token, token_type: 'bearer' as const, expires_in: issued.expiresIn }
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
      return request.user
    },
  )
}

export default authRoutes
