import { Type } from 'typebox'
import { beforeMfaEnrolment } from '../../http/authenticated.js'
import { contextOf } from '../../http/context.js'
import type { TypedApp } from '../../http/typed-app.js'
import type { UserChanges } from '../../services/users.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserListQuery, UserPage, UserPublic, UserUpdate } from '../../schemas/users.js'

// Registered inside authenticated(): each route needs an access token (security and 401 added there).

export function registerListUsers(app: TypedApp) {
  app.get(
    '/users/',
    {
      preHandler: [app.requireRole('admin')],
      schema: {
        tags: ['users'],
        summary: 'List users (admin)',
        querystring: UserListQuery,
        response: { 200: UserPage, ...problemResponses(403, 422) },
      },
    },
    async (request, reply) => {
      const { limit = 20, cursor, q, role, is_active: isActive } = request.query
      const page = await app.accounts.users.list({ limit, cursor, text: q, role, isActive })
      reply.header('cache-control', 'no-store')
      return page
    },
  )
}

export function registerMe(app: TypedApp) {
  app.get(
    '/users/me',
    {
      ...beforeMfaEnrolment,
      schema: {
        tags: ['users'],
        summary: 'The authenticated user (alias of /current-user)',
        // 401 is what authenticated() adds; named here as well because, with the 200 alone, the
        // reply type would refuse the record's dates (which the serializer writes as strings).
        response: { 200: UserPublic, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return app.currentUser(request)
    },
  )
}

export function registerGetUser(app: TypedApp) {
  app.get(
    '/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'One user (the user themself or an admin)',
        params: IdParams,
        response: { 200: UserPublic, ...problemResponses(403, 404, 422) },
      },
    },
    async (request, reply) => {
      const user = await app.accounts.users.get(contextOf(request), request.params.id)
      reply.header('cache-control', 'no-store')
      return user
    },
  )
}

function changesOf(body: UserUpdate): UserChanges {
  const { name, email, role, is_active: isActive, current_password: currentPassword } = body
  return { name, email, role, isActive, currentPassword }
}

export function registerUpdateUser(app: TypedApp) {
  app.patch(
    '/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'Change a user',
        description:
          'The user themself may change `name` and `email` (a new email must be verified again); ' +
          'only an admin may change `role` and `is_active`. The last active admin cannot be demoted or deactivated.',
        params: IdParams,
        body: UserUpdate,
        response: { 200: UserPublic, ...problemResponses(403, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const user = await app.accounts.users.update(
        contextOf(request),
        request.params.id,
        changesOf(request.body),
      )
      reply.header('cache-control', 'no-store')
      return user
    },
  )
}

export function registerDeleteUser(app: TypedApp) {
  app.delete(
    '/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'Delete a user',
        description:
          'The user themself or an admin. Their products stay, with owner_id null. The last active admin cannot be deleted.',
        params: IdParams,
        response: {
          204: Type.Null({ description: 'Deleted' }),
          ...problemResponses(403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      await app.accounts.users.remove(contextOf(request), request.params.id)
      return reply.code(204).send(null)
    },
  )
}
