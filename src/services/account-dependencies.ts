import type { Repositories } from '../repositories/index.js'
import type { AccountEmails } from './account-emails.js'
import type { AuditService } from './audit.js'
import type { Clock } from './clock.js'
import type { SessionService } from './sessions.js'

/**
 * What the account rules need of the session service: ending every session of a user (but `keep`).
 * Called as a method of the object given, never detached: a test replaces it on that object.
 */
export type SessionEnding = Pick<SessionService, 'endAllSessionsOf'>

/** What the account services (users, passwords, email verification) are built over. */
export interface AccountDependencies {
  repos: Repositories
  /** Runs `work` in one transaction, with repositories bound to it. */
  transaction<T>(work: (repos: Repositories) => Promise<T>): Promise<T>
  sessions: SessionEnding
  audit: AuditService
  accountEmails: AccountEmails
  passwordMinLength: number
  clock: Clock
}
