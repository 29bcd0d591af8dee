import { hashPassword, verifyPassword } from '../auth/passwords.js'
import type { AccountDependencies } from './account-dependencies.js'
import { dateOf } from './clock.js'
import { assertPasswordPolicy } from './accounts.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, invalidInput } from './errors.js'

export interface PasswordChange {
  currentPassword: string
  newPassword: string
}

/** Changes the caller's password, given the current one. Every other session ends; the caller's goes on. */
export async function changePassword(
  deps: AccountDependencies,
  context: RequestContext,
  { currentPassword, newPassword }: PasswordChange,
): Promise<void> {
  assertPasswordPolicy(newPassword, deps.passwordMinLength, 'new_password')
  const actor = actorOf(context)
  const userId = actor.id
  const storedHash = await deps.repos.users.findPasswordHash(userId)
  if (storedHash === undefined) throw accountGone()
  if (!(await verifyPassword(storedHash, currentPassword))) {
    // A valid token without the password: perhaps a stolen token trying to take the account.
    await deps.audit.record(context, {
      event: 'password_change_failed',
      outcome: 'failure',
      userId,
      details: { reason: 'wrong_current_password' },
    })
    throw invalidInput('The current password is not right.', [
      { in: 'body', field: 'current_password', message: 'is not your current password' },
    ])
  }
  const passwordHash = await hashPassword(newPassword)
  await deps.transaction(async (repos) => {
    await repos.users.update(userId, { password_hash: passwordHash, updated_at: dateOf(deps.clock) })
    await deps.sessions.endAllSessionsOf(repos, userId, 'password_changed', actor.sessionId)
    await deps.audit.record(context, { event: 'password_changed', outcome: 'success', userId }, repos)
  })
}
