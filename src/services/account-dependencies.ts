import type { Repositories } from '../repositories/index.js'
import type { AccountEmails } from './account-emails.js'
import type { AuditService } from './audit.js'

/** Why the account rules end a user's sessions (among the session service's reasons). */
export type AccountSessionEndReason =
  'password_changed' | 'password_reset' | 'user_deactivated' | 'user_deleted' | 'role_changed'

/**
 * What the account rules need of the session service: ending every session of a user (but `keep`).
 * Called as a method of the object given, never detached: a test replaces it on that object.
 */
export interface SessionEnding {
  endAllSessionsOf(
    repos: Repositories,
    userId: number,
    reason: AccountSessionEndReason,
    keep?: string,
  ): Promise<void>
}

/** What the account services (users, passwords, email verification) are built over. */
export interface AccountDependencies {
  repos: Repositories
  /** Runs `work` in one transaction, with repositories bound to it. */
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  sessions: SessionEnding
  audit: AuditService
  accountEmails: AccountEmails
  passwordMinLength: number
}
