import { hashOpaqueToken } from '../auth/opaque-tokens.js'
import type { UserRecord } from '../repositories/users.js'
import type { AccountDependencies } from './account-dependencies.js'
import { dateOf } from './clock.js'
import { actorOf, type RequestContext } from './context.js'
import { accountGone, badRequest, conflict } from './errors.js'

/** One answer for an unknown, used, expired or outdated token. */
const invalidVerificationLink = () =>
  badRequest(
    'This email verification link is not valid: it may have expired, been used already, or be for an ' +
      'email address the account no longer has. Log in and ask for a new one at POST /verify-email/resend.',
  )

/** Verifies an email address with the token mailed to it (once, while the account still has it). */
export async function verifyEmail(
  deps: AccountDependencies,
  context: RequestContext,
  token: string,
): Promise<void> {
  const tokenHash = hashOpaqueToken(token)
  await deps.transaction(async (repos) => {
    const now = dateOf(deps.clock)
    const holder = await repos.accountTokens.findUsable(tokenHash, 'email_verification', now)
    // Stryker disable next-line ConditionalExpression: equivalent: the claim below refuses the same tokens with the same answer.
    if (!holder) throw invalidVerificationLink()
    if (!(await repos.accountTokens.consume(tokenHash, 'email_verification', now)))
      throw invalidVerificationLink()
    // A token proves the address it was mailed to, and nothing about one the account has now.
    // (Thrown inside the transaction, so the token is not spent.)
    if (!(await repos.accountTokens.markEmailVerified(holder.user_id, holder.email, now)))
      throw invalidVerificationLink()
    await deps.audit.record(
      context,
      { event: 'email_verified', outcome: 'success', userId: holder.user_id },
      repos,
    )
  })
}

/** Mails the caller a new verification link to their current address; answers the user it goes to. */
export async function resendEmailVerification(
  deps: AccountDependencies,
  context: RequestContext,
): Promise<UserRecord> {
  const user = await deps.repos.users.findById(actorOf(context).id)
  if (!user || !user.is_active) throw accountGone()
  if (user.email_verified) throw conflict('Your email address is already verified.')
  deps.accountEmails.sendEmailVerification(user, context.log)
  return user
}
