import type { ServiceLogger } from './context.js'
import { normalizeEmail } from '../auth/identifiers.js'
import { generateOpaqueToken, hashOpaqueToken } from '../auth/opaque-tokens.js'
import type { AccountTokenPurpose } from '../db/database.js'
import type { Mailer } from '../mail/mailer.js'
import {
  emailVerificationEmail,
  passwordResetEmail,
  securityNoticeEmail,
  type SecurityNotice,
} from '../mail/templates.js'
import type { Repositories } from '../repositories/index.js'
import { createBackgroundWork } from './background-work.js'
import { dateOf, systemClock, type Clock } from './clock.js'

export const PASSWORD_RESET_LIFETIME_MINUTES = 60
export const EMAIL_VERIFICATION_LIFETIME_HOURS = 24

export interface AccountEmails {
  /**
   * Mails a password reset link to the active account with this email, if there is one. The work
   * starts after the current response is sent and never throws: whether an account exists shows
   * neither in the answer nor in its timing. `onQueued` records the request once a link is on its
   * way (as a security event); without it, a log line says so.
   */
  sendPasswordReset(email: string, log: ServiceLogger, onQueued?: (userId: number) => Promise<void>): void
  /** Mails a link that verifies the user's current email; in the background, never throws. */
  sendEmailVerification(user: { id: number; email: string }, log: ServiceLogger): void
  /**
   * Tells the user of a change to how their account signs in (a factor added or removed, a
   * recovery code used…): they may not be the one who made it. Queued, never throws.
   */
  sendSecurityNotice(userId: number, notice: SecurityNotice, log: ServiceLogger): void
  /** Resolves true once no such work is under way, or false when `timeoutMs` passes first. */
  whenIdle(timeoutMs: number): Promise<boolean>
}

export interface AccountEmailsOptions {
  repos: Repositories
  mailer: Mailer
  /**
   * Link templates with a `{token}` placeholder (PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL), and
   * the page where users review their account's sign-in methods.
   */
  links: { passwordReset: string; emailVerification: string; account: string }
  clock?: Clock
}

/** The token is base64url, so it goes into a URL as it is. */
export const linkWithToken = (template: string, token: string) => template.replaceAll('{token}', token)

interface TokenKind {
  purpose: AccountTokenPurpose
  lifetimeMs: number
  /** Whether the new token makes the user's earlier ones of this purpose obsolete. */
  replacesEarlier: boolean
}

const PASSWORD_RESET_TOKEN: TokenKind = {
  purpose: 'password_reset',
  lifetimeMs: PASSWORD_RESET_LIFETIME_MINUTES * 60_000,
  // Only the latest link works: an older one, perhaps left in a forgotten inbox, dies now.
  replacesEarlier: true,
}

const EMAIL_VERIFICATION_TOKEN: TokenKind = {
  purpose: 'email_verification',
  lifetimeMs: EMAIL_VERIFICATION_LIFETIME_HOURS * 3_600_000,
  // Earlier links stay valid: each proves control of the address it was sent to.
  replacesEarlier: false,
}

/**
 * Stores a new token's hash (the token itself only goes into the email) and returns the token.
 * No transaction: each statement locks only its own rows, so issuing tokens for one user at
 * once (registration, then at once a recovery) cannot deadlock. Stopping halfway leaves at worst
 * no token (the user asks again) or an obsolete one until it expires.
 */
async function issueAccountToken(
  repos: Repositories,
  clock: Clock,
  user: { id: number; email: string },
  { purpose, lifetimeMs, replacesEarlier }: TokenKind,
): Promise<string> {
  const token = generateOpaqueToken()
  const now = dateOf(clock)
  const obsolete = await repos.accountTokens.findObsolete(user.id, now, replacesEarlier ? purpose : undefined)
  await repos.accountTokens.deleteByHashes(obsolete)
  await repos.accountTokens.insert({
    token_hash: hashOpaqueToken(token),
    user_id: user.id,
    purpose,
    email: user.email,
    created_at: now,
    expires_at: new Date(now.getTime() + lifetimeMs),
  })
  return token
}

export function createAccountEmails({
  repos,
  mailer,
  links,
  clock = systemClock,
}: AccountEmailsOptions): AccountEmails {
  const background = createBackgroundWork()

  async function mailPasswordReset(
    email: string,
    log: ServiceLogger,
    onQueued?: (userId: number) => Promise<void>,
  ) {
    const recipient = await repos.accountTokens.findRecipientByEmail(normalizeEmail(email))
    if (!recipient || !recipient.is_active) {
      log.info({ event: 'password_recovery_unknown' }, 'password recovery asked for no active account')
      return
    }
    const token = await issueAccountToken(repos, clock, recipient, PASSWORD_RESET_TOKEN)
    const link = linkWithToken(links.passwordReset, token)
    mailer.send({ to: recipient.email, ...passwordResetEmail(link, PASSWORD_RESET_LIFETIME_MINUTES) })
    if (onQueued) await onQueued(recipient.id)
    else log.info({ event: 'password_reset_requested', userId: recipient.id }, 'password reset link queued')
  }

  async function mailEmailVerification(user: { id: number; email: string }, log: ServiceLogger) {
    const token = await issueAccountToken(repos, clock, user, EMAIL_VERIFICATION_TOKEN)
    const link = linkWithToken(links.emailVerification, token)
    mailer.send({ to: user.email, ...emailVerificationEmail(link, EMAIL_VERIFICATION_LIFETIME_HOURS) })
    log.info({ event: 'email_verification_requested', userId: user.id }, 'email verification link queued')
  }

  return {
    sendPasswordReset(email, log, onQueued) {
      background.start(log, 'a password reset email could not be prepared', () =>
        mailPasswordReset(email, log, onQueued),
      )
    },
    sendEmailVerification(user, log) {
      background.start(log, 'an email verification email could not be prepared', () =>
        mailEmailVerification(user, log),
      )
    },
    sendSecurityNotice(userId, notice, log) {
      background.start(log, 'a security notice email could not be prepared', async () => {
        const user = await repos.users.findById(userId)
        if (!user) return
        mailer.send({ to: user.email, ...securityNoticeEmail(notice, links.account) })
        log.info({ event: 'security_notice_queued', userId, notice: notice.kind }, 'security notice queued')
      })
    },
    whenIdle: (timeoutMs) => background.whenIdle(timeoutMs),
  }
}
