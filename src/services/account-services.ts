import type { UserRecord } from '../repositories/users.js'
import type { AccountDependencies } from './account-dependencies.js'
import type { RequestContext } from './context.js'
import { resendEmailVerification, verifyEmail } from './email-verification.js'
import { changePassword, type PasswordChange } from './password-change.js'
import { requestPasswordReset, resetPassword, type PasswordReset } from './password-recovery.js'
import { createUsersService, type UsersService } from './users.js'

export interface PasswordService {
  change(context: RequestContext, change: PasswordChange): Promise<void>
  /** Starts the recovery in the background; returns at once, whatever the email. */
  requestReset(context: RequestContext, email: string): void
  reset(context: RequestContext, reset: PasswordReset): Promise<void>
}

export interface EmailVerificationService {
  verify(context: RequestContext, token: string): Promise<void>
  /** Answers the user the new link goes to. */
  resend(context: RequestContext): Promise<UserRecord>
}

/** The rules of accounts: users, their passwords, their email addresses. */
export interface AccountServices {
  users: UsersService
  passwords: PasswordService
  emailVerification: EmailVerificationService
}

export function createAccountServices(deps: AccountDependencies & { secretKey: string }): AccountServices {
  return {
    users: createUsersService(deps),
    passwords: {
      change: (context, change) => changePassword(deps, context, change),
      requestReset: (context, email) => requestPasswordReset(deps, context, email),
      reset: (context, reset) => resetPassword(deps, context, reset),
    },
    emailVerification: {
      verify: (context, token) => verifyEmail(deps, context, token),
      resend: (context) => resendEmailVerification(deps, context),
    },
  }
}
