import { nameKey, normalizeEmail } from '../auth/identifiers.js'
import { verifyPassword } from '../auth/passwords.js'
import type { Role } from '../auth/tokens.js'
import type { UserRowUpdate } from '../db/database.js'
import type { Repositories } from '../repositories/index.js'
import type { UserRecord } from '../repositories/users.js'
import type { AccountDependencies } from './account-dependencies.js'
import { dateOf } from './clock.js'
import { assertNamePolicy, explainUserConflict } from './accounts.js'
import type { AuditService } from './audit.js'
import { actorOf, type Actor, type RequestContext } from './context.js'
import { conflict, forbidden, invalidInput, notFound } from './errors.js'
import { canManageUser } from './policies.js'
import { isRecentFactor } from './reauthentication.js'

/** What a caller asks to change of a user (PATCH /users/{id}). */
export interface UserChanges {
  name?: string
  email?: string
  role?: Role
  isActive?: boolean
  /** Needed when a non-admin changes their own email. */
  currentPassword?: string
}

/**
 * Changes a user: the user themself may change name and email (a new email must be verified
 * again), only an admin role and is_active; the last active admin keeps their role. A changed role
 * or a deactivation ends the user's sessions.
 */
export async function updateUser(
  deps: AccountDependencies,
  context: RequestContext,
  id: number,
  changes: UserChanges,
): Promise<UserRecord> {
  const actor = actorOf(context)
  assertMayChange(actor, id, changes)
  if (changes.name !== undefined) assertNamePolicy(changes.name)
  await confirmEmailChange(deps, actor, id, changes)
  const { email, name } = changes
  // A unique violation aborts the transaction (on PostgreSQL), so it is explained after it.
  const { user, emailChanged } = await deps
    .transaction((repos) => applyChanges(deps, context, repos, id, changes))
    .catch((error: unknown) =>
      // Stryker disable next-line ConditionalExpression: equivalent: a conflict not found on the name is reported as the email's.
      explainUserConflict(deps.repos, error, { email: email && normalizeEmail(email), name }, id),
    )
  if (emailChanged) deps.accountEmails.sendEmailVerification(user, context.log)
  return user
}

function assertMayChange(actor: Actor, id: number, changes: UserChanges) {
  if (!canManageUser(actor, id)) throw forbidden('You may only change your own account.')
  if ((changes.role !== undefined || changes.isActive !== undefined) && actor.role !== 'admin')
    throw forbidden('Only an admin may change role or is_active.')
}

/**
 * A stolen access token alone must not be enough to move the account to another address (and
 * then reset its password from there): a non-admin proves the password first, or has proved a
 * second factor in this session within the last minutes (services/reauthentication.ts).
 */
async function confirmEmailChange(deps: AccountDependencies, actor: Actor, id: number, changes: UserChanges) {
  const { repos } = deps
  if (changes.email === undefined || actor.role === 'admin') return
  const current = await repos.users.findById(id)
  if (!current || normalizeEmail(changes.email) === current.email) return
  const storedHash = await repos.users.findPasswordHash(id)
  if (changes.currentPassword === undefined) {
    const verifiedAt = await repos.sessions.factorVerifiedAt(actor.sessionId, actor.id)
    if (isRecentFactor(verifiedAt, dateOf(deps.clock))) return
    throw invalidInput(
      'Changing your email needs your current password (or a second factor proved in the last 5 minutes).',
      [{ in: 'body', field: 'current_password', message: 'is required to change the email' }],
    )
  }
  if (!storedHash || !(await verifyPassword(storedHash, changes.currentPassword)))
    throw invalidInput('The current password is not right.', [
      { in: 'body', field: 'current_password', message: 'is not your current password' },
    ])
}

async function applyChanges(
  deps: AccountDependencies,
  context: RequestContext,
  repos: Repositories,
  id: number,
  changes: UserChanges,
): Promise<{ user: UserRecord; emailChanged: boolean }> {
  const target = await repos.users.findById(id)
  if (!target) throw notFound(`There is no user ${id}.`)
  const update = rowUpdateOf(target, changes)
  await assertAnAdminRemains(repos, target, update)
  if (Object.keys(update).length === 0) return { user: target, emailChanged: false }
  update.updated_at = dateOf(deps.clock)
  await repos.users.update(id, update)
  // Access tokens carry the role: a changed role or a deactivation ends the user's sessions.
  if (update.is_active === false) await deps.sessions.endAllSessionsOf(repos, id, 'user_deactivated')
  else if (update.role !== undefined) await deps.sessions.endAllSessionsOf(repos, id, 'role_changed')
  await recordChanges(deps.audit, context, repos, target, update)
  return { user: (await repos.users.findById(id))!, emailChanged: update.email !== undefined }
}

/** The columns that actually change: a value equal to the stored one is no change. */
function rowUpdateOf(target: UserRecord, changes: UserChanges): UserRowUpdate {
  const { name, email, role, isActive } = changes
  const update: UserRowUpdate = {}
  if (name !== undefined && name.normalize('NFC') !== target.name) {
    update.name = name.normalize('NFC')
    update.name_key = nameKey(name)
  }
  if (email !== undefined && normalizeEmail(email) !== target.email) {
    update.email = normalizeEmail(email)
    update.email_verified = false
  }
  if (role !== undefined && role !== target.role) update.role = role
  if (isActive !== undefined && isActive !== target.is_active) update.is_active = isActive
  return update
}

async function assertAnAdminRemains(repos: Repositories, target: UserRecord, update: UserRowUpdate) {
  const losesAdmin =
    target.role === 'admin' && target.is_active && (update.role === 'user' || update.is_active === false)
  if (losesAdmin && (await repos.users.lockActiveAdmins()) <= 1)
    throw conflict('This is the last active admin: make another user admin first.')
}

/** Recorded in the transaction (the actor is the caller): a change that rolls back leaves no row. */
async function recordChanges(
  audit: AuditService,
  context: RequestContext,
  repos: Repositories,
  target: UserRecord,
  update: UserRowUpdate,
) {
  const userId = target.id
  if (update.role !== undefined)
    await audit.record(
      context,
      {
        event: 'user_role_changed',
        outcome: 'success',
        userId,
        details: { from: target.role, to: update.role },
      },
      repos,
    )
  if (update.is_active !== undefined)
    await audit.record(
      context,
      { event: update.is_active ? 'user_reactivated' : 'user_deactivated', outcome: 'success', userId },
      repos,
    )
  if (update.email !== undefined)
    await audit.record(context, { event: 'user_email_changed', outcome: 'success', userId }, repos)
}
