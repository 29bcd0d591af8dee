import type { Role } from '../auth/tokens.js'
import type { UserRecord } from '../repositories/users.js'
import type { AccountDependencies } from './account-dependencies.js'
import { createAccount } from './accounts.js'
import { actorOf, type RequestContext } from './context.js'
import { conflict, forbidden, notFound } from './errors.js'
import { createKeysetPaging, type Page } from './pagination.js'
import { canManageUser } from './policies.js'
import { updateUser, type UserChanges } from './user-changes.js'

export type { UserChanges } from './user-changes.js'

/** A sign-up: `role` other than user only from an authenticated admin. */
export interface Registration {
  name: string
  email: string
  password: string
  role?: Role
}

export interface UserListQuery {
  limit: number
  cursor?: string
  /** Matched, case-insensitively, within the name or the email. */
  text?: string
  role?: Role
  isActive?: boolean
}

export interface UsersService {
  /** Creates an account and mails it a verification link. */
  register(context: RequestContext, registration: Registration): Promise<UserRecord>
  /** A page of users, in id order (for admins: the route requires the role). */
  list(query: UserListQuery): Promise<Page<UserRecord>>
  /** One user, for the user themself or an admin. */
  get(context: RequestContext, id: number): Promise<UserRecord>
  update(context: RequestContext, id: number, changes: UserChanges): Promise<UserRecord>
  /** Deletes a user (the user themself or an admin); their products stay, without an owner. */
  remove(context: RequestContext, id: number): Promise<void>
}

export function createUsersService(deps: AccountDependencies & { secretKey: string }): UsersService {
  const paging = createKeysetPaging(deps.secretKey, 'users')
  return {
    async register(context, registration) {
      if (registration.role !== undefined && registration.role !== 'user' && context.actor?.role !== 'admin')
        throw forbidden('Only an admin may set role.')
      const user = await createAccount(deps.repos, registration, deps.passwordMinLength)
      // The actor is the admin who created the account, if one did.
      await deps.audit.record(context, {
        event: 'user_registered',
        outcome: 'success',
        userId: user.id,
        details: { role: user.role },
      })
      deps.accountEmails.sendEmailVerification(user, context.log)
      return user
    },

    async list({ limit, cursor, text, role, isActive }) {
      const filters = { text: text?.normalize('NFKC').toLowerCase(), role, isActive }
      const after = paging.start(cursor, filters, ({ id }) =>
        Number.isSafeInteger(id) ? (id as number) : undefined,
      )
      const rows = await deps.repos.users.list({ afterId: after ?? 0, limit: limit + 1, filters })
      return paging.page(rows, limit, filters, (user) => ({ id: user.id }))
    },

    async get(context, id) {
      // Checked before the lookup, so a non-admin learns nothing about which ids exist.
      if (!canManageUser(actorOf(context), id)) throw forbidden('You may only see your own account.')
      const user = await deps.repos.users.findById(id)
      if (!user) throw notFound(`There is no user ${id}.`)
      return user
    },

    update: (context, id, changes) => updateUser(deps, context, id, changes),

    async remove(context, id) {
      if (!canManageUser(actorOf(context), id)) throw forbidden('You may only delete your own account.')
      await deps.transaction(async (repos) => {
        const target = await repos.users.findById(id)
        if (!target) throw notFound(`There is no user ${id}.`)
        if (target.role === 'admin' && target.is_active && (await repos.users.lockActiveAdmins()) <= 1)
          throw conflict('This is the last active admin: make another user admin first.')
        await deps.sessions.endAllSessionsOf(repos, id, 'user_deleted')
        // In the transaction: if the deletion fails, no row claims it happened. The row keeps the
        // user's id (audit_events has no foreign key), so the trail outlives the account.
        await deps.audit.record(context, { event: 'user_deleted', outcome: 'success', userId: id }, repos)
        await repos.users.delete(id)
      })
    },
  }
}
