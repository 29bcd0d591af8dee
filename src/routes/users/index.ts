import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { assertNamePolicy, createAccount, explainUserConflict } from '../../auth/accounts.js'
import { nameKey, normalizeEmail } from '../../auth/identifiers.js'
import { canManageUser } from '../../services/policies.js'
import { verifyPassword } from '../../auth/passwords.js'
import type { UserRowUpdate } from '../../db/database.js'
import { conflict, forbidden, invalidInput, notFound } from '../../services/errors.js'
import { createKeysetPaging } from '../../services/pagination.js'
import { bearerSecurity } from '../../http/openapi.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import { UserCreate, UserListQuery, UserPage, UserPublic, UserUpdate } from '../../schemas/users.js'
import type { Config } from '../../config.js'
import { bearerToken } from '../../plugins/app/auth.js'

const usersRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const paging = createKeysetPaging(config.secretKey, 'users')

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
      const { role, ...account } = request.body
      if (role !== undefined && role !== 'user') {
        // Only an authenticated admin may create another admin.
        if (bearerToken(request) === undefined) throw forbidden('Only an admin may set role.')
        await app.authenticate(request, reply)
        if (request.actor.role !== 'admin') throw forbidden('Only an admin may set role.')
      }
      const user = await createAccount(app.repos, { ...account, role }, config.passwordMinLength)
      // The actor is the admin who created the account, if one did (authenticated above).
      await app.recordSecurityEvent(request, {
        event: 'user_registered',
        outcome: 'success',
        userId: user.id,
        details: { role: user.role },
      })
      app.accountEmails.sendEmailVerification(user, request.log)
      return reply
        .code(201)
        .header('location', `/users/${user.id}`)
        .header('cache-control', 'no-store')
        .send(user)
    },
  )

  app.get(
    '/users/',
    {
      onRequest: [app.authenticate],
      preHandler: [app.requireRole('admin')],
      schema: {
        tags: ['users'],
        summary: 'List users (admin)',
        security: bearerSecurity,
        querystring: UserListQuery,
        response: { 200: UserPage, ...problemResponses(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const { limit = 20, cursor, q, role, is_active: isActive } = request.query
      const filters = { text: q?.normalize('NFKC').toLowerCase(), role, isActive }
      const after = paging.start(cursor, filters, ({ id }) =>
        typeof id === 'number' && Number.isSafeInteger(id) ? id : undefined,
      )
      const rows = await app.repos.users.list({ afterId: after ?? 0, limit: limit + 1, filters })
      reply.header('cache-control', 'no-store')
      return paging.page(rows, limit, filters, (user) => ({ id: user.id }))
    },
  )

  app.get(
    '/users/me',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['users'],
        summary: 'The authenticated user (alias of /current-user)',
        security: bearerSecurity,
        response: { 200: UserPublic, ...problemResponses(401) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      return app.currentUser(request)
    },
  )

  app.get(
    '/users/:id',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['users'],
        summary: 'One user (the user themself or an admin)',
        security: bearerSecurity,
        params: IdParams,
        response: { 200: UserPublic, ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      // Checked before the lookup, so a non-admin learns nothing about which ids exist.
      if (!canManageUser(request.actor, id)) throw forbidden('You may only see your own account.')
      const user = await app.repos.users.findById(id)
      if (!user) throw notFound(`There is no user ${id}.`)
      reply.header('cache-control', 'no-store')
      return user
    },
  )

  app.patch(
    '/users/:id',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['users'],
        summary: 'Change a user',
        description:
          'The user themself may change `name` and `email` (a new email must be verified again); ' +
          'only an admin may change `role` and `is_active`. The last active admin cannot be demoted or deactivated.',
        security: bearerSecurity,
        params: IdParams,
        body: UserUpdate,
        response: { 200: UserPublic, ...problemResponses(401, 403, 404, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const actor = request.actor
      if (!canManageUser(actor, id)) throw forbidden('You may only change your own account.')
      const { name, email, role, is_active: isActive, current_password: currentPassword } = request.body
      if ((role !== undefined || isActive !== undefined) && actor.role !== 'admin')
        throw forbidden('Only an admin may change role or is_active.')
      if (name !== undefined) assertNamePolicy(name)
      // A stolen access token alone must not be enough to move the account to another address
      // (and then reset its password from there): a non-admin proves the password first.
      if (email !== undefined && actor.role !== 'admin') {
        const current = await app.repos.users.findById(id)
        if (current && normalizeEmail(email) !== current.email) {
          const storedHash = await app.repos.users.findPasswordHash(id)
          if (currentPassword === undefined)
            throw invalidInput('Changing your email needs your current password.', [
              { in: 'body', field: 'current_password', message: 'is required to change the email' },
            ])
          if (!storedHash || !(await verifyPassword(storedHash, currentPassword)))
            throw invalidInput('The current password is not right.', [
              { in: 'body', field: 'current_password', message: 'is not your current password' },
            ])
        }
      }

      let emailChanged = false
      // A unique violation aborts the transaction (on PostgreSQL), so it is explained after it.
      const updated = await app
        .transaction(async (repos) => {
          const target = await repos.users.findById(id)
          if (!target) throw notFound(`There is no user ${id}.`)
          const changes: UserRowUpdate = {}
          if (name !== undefined && name.normalize('NFC') !== target.name) {
            changes.name = name.normalize('NFC')
            changes.name_key = nameKey(name)
          }
          if (email !== undefined && normalizeEmail(email) !== target.email) {
            changes.email = normalizeEmail(email)
            changes.email_verified = false
            emailChanged = true
          }
          if (role !== undefined && role !== target.role) changes.role = role
          if (isActive !== undefined && isActive !== target.is_active) changes.is_active = isActive
          const losesAdmin =
            target.role === 'admin' &&
            target.is_active &&
            (changes.role === 'user' || changes.is_active === false)
          if (losesAdmin && (await repos.users.lockActiveAdmins()) <= 1)
            throw conflict('This is the last active admin: make another user admin first.')
          if (Object.keys(changes).length === 0) return target
          changes.updated_at = new Date()
          await repos.users.update(id, changes)
          // Access tokens carry the role: a changed role or a deactivation ends the user's sessions.
          if (changes.is_active === false) await app.sessions.endAllSessionsOf(repos, id, 'user_deactivated')
          else if (changes.role !== undefined) await app.sessions.endAllSessionsOf(repos, id, 'role_changed')
          // Recorded in the transaction (the actor is the caller): a change that rolls back leaves no row.
          if (changes.role !== undefined)
            await app.recordSecurityEvent(
              request,
              {
                event: 'user_role_changed',
                outcome: 'success',
                userId: id,
                details: { from: target.role, to: changes.role },
              },
              repos,
            )
          if (changes.is_active !== undefined)
            await app.recordSecurityEvent(
              request,
              {
                event: changes.is_active ? 'user_reactivated' : 'user_deactivated',
                outcome: 'success',
                userId: id,
              },
              repos,
            )
          if (changes.email !== undefined)
            await app.recordSecurityEvent(
              request,
              { event: 'user_email_changed', outcome: 'success', userId: id },
              repos,
            )
          return (await repos.users.findById(id))!
        })
        .catch((error: unknown) =>
          explainUserConflict(app.repos, error, { email: email && normalizeEmail(email), name }, id),
        )
      if (emailChanged) app.accountEmails.sendEmailVerification(updated, request.log)
      reply.header('cache-control', 'no-store')
      return updated
    },
  )

  app.delete(
    '/users/:id',
    {
      onRequest: [app.authenticate],
      schema: {
        tags: ['users'],
        summary: 'Delete a user',
        description:
          'The user themself or an admin. Their products stay, with owner_id null. The last active admin cannot be deleted.',
        security: bearerSecurity,
        params: IdParams,
        response: {
          204: Type.Null({ description: 'Deleted' }),
          ...problemResponses(401, 403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      if (!canManageUser(request.actor, id)) throw forbidden('You may only delete your own account.')
      await app.transaction(async (repos) => {
        const target = await repos.users.findById(id)
        if (!target) throw notFound(`There is no user ${id}.`)
        if (target.role === 'admin' && target.is_active && (await repos.users.lockActiveAdmins()) <= 1)
          throw conflict('This is the last active admin: make another user admin first.')
        await app.sessions.endAllSessionsOf(repos, id, 'user_deleted')
        // In the transaction: if the deletion fails, no row claims it happened. The row keeps the
        // user's id (audit_events has no foreign key), so the trail outlives the account.
        await app.recordSecurityEvent(
          request,
          { event: 'user_deleted', outcome: 'success', userId: id },
          repos,
        )
        await repos.users.delete(id)
      })
      return reply.code(204).send(null)
    },
  )
}

export default usersRoutes
