import type { FastifyReply, FastifyRequest } from 'fastify'
import { normalizeEmail } from '../../auth/identifiers.js'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import { bearerToken } from '../../http/bearer-token.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserCreate, UserPublic } from '../../schemas/users.js'

/**
 * Signing up is public, but only an admin may set a role other than user: when one is asked for
 * and an access token is sent, the token is checked (a bad one is a 401), so that the rule knows
 * who asks. Without a token, or for the user role, the caller stays anonymous.
 */
async function authenticateWhenRoleAsked(
  app: TypedApp,
  request: FastifyRequest,
  reply: FastifyReply,
  role: UserCreate['role'],
) {
  if (role !== undefined && role !== 'user' && bearerToken(request) !== undefined)
    await app.authenticate(request, reply)
}

export function registerSignUp(app: TypedApp) {
  app.post(
    '/users/',
    {
      preHandler: [
        app.limitAttempts<{ email: string }>('register', (request) => normalizeEmail(request.body.email)),
      ],
      schema: {
        tags: ['users'],
        summary: 'Register a user',
        description:
          'Public. Answers 409 when the name or the email is taken (case-insensitively). Only an admin ' +
          '(sending an access token) may set `role`.',
        body: UserCreate,
        response: { 201: UserPublic, ...problemResponses(401, 403, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      await authenticateWhenRoleAsked(app, request, reply, request.body.role)
      const user = await app.accounts.users.register(contextOf(request), request.body)
      return reply
        .code(201)
        .header('location', `/users/${user.id}`)
        .header('cache-control', 'no-store')
        .send(user)
    },
  )
}
