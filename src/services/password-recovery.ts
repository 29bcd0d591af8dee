import { hashOpaqueToken } from '../auth/opaque-tokens.js'
import { hashPassword } from '../auth/passwords.js'
import type { AccountDependencies } from './account-dependencies.js'
import { assertPasswordPolicy } from './accounts.js'
import { dateOf } from './clock.js'
import type { RequestContext } from './context.js'
import { badRequest } from './errors.js'

/** One answer for an unknown, used and expired token: the caller learns nothing about which. */
const invalidResetLink = () =>
  badRequest(
    'This password reset link is not valid: it may have expired or been used already. Ask for a new one at POST /password-recovery.',
  )

/**
 * Mails a reset link to the active account with this email, if any. Nothing is awaited: the
 * lookup, the token and the email happen after the answer, so neither the answer nor its timing
 * tells whether the account exists.
 */
export function requestPasswordReset(
  deps: AccountDependencies,
  context: RequestContext,
  email: string,
): void {
  deps.accountEmails.sendPasswordReset(email, context.log, (userId) =>
    deps.audit.record(context, { event: 'password_reset_requested', outcome: 'success', userId }),
  )
}

export interface PasswordReset {
  /** The token from the reset email. */
  token: string
  newPassword: string
}

/** Sets a new password with a reset token (once); every session of the account ends. */
export async function resetPassword(
  deps: AccountDependencies,
  context: RequestContext,
  { token, newPassword }: PasswordReset,
): Promise<void> {
  assertPasswordPolicy(newPassword, deps.passwordMinLength, 'new_password')
  const tokenHash = hashOpaqueToken(token)
  // Checked before the password is hashed, so that a made-up token costs one indexed read,
  // not an argon2 hash.
  const holder = await deps.repos.accountTokens.findUsable(tokenHash, 'password_reset', dateOf(deps.clock))
  if (!holder) throw invalidResetLink()
  const passwordHash = await hashPassword(newPassword)

  await deps.transaction(async (repos) => {
    const now = dateOf(deps.clock)
    // The claim decides: of two requests with one token, only one gets past this line.
    if (!(await repos.accountTokens.consume(tokenHash, 'password_reset', now))) throw invalidResetLink()
    const user = await repos.users.findById(holder.user_id)
    if (!user) throw invalidResetLink()
    await repos.users.update(user.id, {
      password_hash: passwordHash,
      updated_at: now,
      // The link reached the account's current address, which proves the address as well.
      ...(user.email === holder.email ? { email_verified: true } : {}),
    })
    await deps.sessions.endAllSessionsOf(repos, user.id, 'password_reset')
    await deps.audit.record(context, { event: 'password_reset', outcome: 'success', userId: user.id }, repos)
  })
}
