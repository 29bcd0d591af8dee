/** An email's content: plain text for every client, and a simple HTML alternative. */
export interface MailContent {
  subject: string
  text: string
  html: string
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

/**
 * The HTML alternative of a message made of paragraphs and one link. The link is also shown as
 * text, for clients that do not make it clickable.
 */
function html(
  paragraphsBefore: string[],
  link: string,
  linkLabel: string,
  paragraphsAfter: string[],
): string {
  const paragraph = (text: string) => `<p>${escapeHtml(text)}</p>`
  const href = escapeHtml(link)
  return [
    '<!DOCTYPE html>',
    '<html><body style="font-family: sans-serif; line-height: 1.5; max-width: 36em">',
    ...paragraphsBefore.map(paragraph),
    `<p><a href="${href}">${escapeHtml(linkLabel)}</a></p>`,
    `<p style="color: #555; font-size: 0.9em; word-break: break-all">${href}</p>`,
    ...paragraphsAfter.map(paragraph),
    '</body></html>',
  ].join('\n')
}

export function passwordResetEmail(link: string, validMinutes: number): MailContent {
  const before = [
    'Hello,',
    'Someone, hopefully you, asked to reset the password of the account with this email address. ' +
      `To choose a new password, open this link within ${validMinutes} minutes:`,
  ]
  const after = [
    'The link works once. Setting a new password logs the account out on every device.',
    'If you did not ask for this, ignore this email: your password stays as it is.',
  ]
  return {
    subject: 'Reset your password',
    text: [...before, link, ...after].join('\n\n') + '\n',
    html: html(before, link, 'Choose a new password', after),
  }
}

export function emailVerificationEmail(link: string, validHours: number): MailContent {
  const before = [
    'Hello,',
    `Please confirm that this email address is yours by opening this link within ${validHours} hours:`,
  ]
  const after = ['If you did not create an account or change its email address, ignore this email.']
  return {
    subject: 'Verify your email address',
    text: [...before, link, ...after].join('\n\n') + '\n',
    html: html(before, link, 'Verify my email address', after),
  }
}

/** A change to how an account signs in, told to its owner (who may not have made it). */
export type SecurityNotice =
  | { kind: 'totp_enabled' }
  | { kind: 'totp_disabled' }
  | { kind: 'passkey_added'; name: string }
  | { kind: 'passkey_removed'; name: string }
  | { kind: 'recovery_codes_regenerated' }
  | { kind: 'recovery_code_used'; codesLeft: number }
  | { kind: 'second_factor_failed' }
  | { kind: 'factors_reset' }
  | { kind: 'identity_linked'; provider: string }
  | { kind: 'identity_unlinked'; provider: string }

function noticeText(notice: SecurityNotice): { subject: string; what: string } {
  switch (notice.kind) {
    case 'totp_enabled':
      return {
        subject: 'Authenticator app added',
        what: 'An authenticator app (TOTP) now protects your account.',
      }
    case 'totp_disabled':
      return {
        subject: 'Authenticator app removed',
        what: 'The authenticator app (TOTP) was removed from your account.',
      }
    case 'passkey_added':
      return { subject: 'Passkey added', what: `A passkey ("${notice.name}") was added to your account.` }
    case 'passkey_removed':
      return {
        subject: 'Passkey removed',
        what: `The passkey "${notice.name}" was removed from your account.`,
      }
    case 'recovery_codes_regenerated':
      return {
        subject: 'New recovery codes',
        what: 'New recovery codes were made for your account; the earlier ones no longer work.',
      }
    case 'recovery_code_used':
      return {
        subject: 'A recovery code was used',
        what: `A recovery code was used to sign in to your account or confirm a change; ${notice.codesLeft} unused codes are left.`,
      }
    case 'second_factor_failed':
      return {
        subject: 'A sign-in was stopped at the second step',
        what:
          'Someone gave your password correctly, then a wrong second-factor code. If it was not you, your ' +
          'password is known to someone else: change it now.',
      }
    case 'factors_reset':
      return {
        subject: 'Your second factors were reset',
        what:
          'An administrator removed the second factors (authenticator app, passkeys, recovery codes) of your ' +
          'account and signed it out everywhere. You can sign in with your password and add them again.',
      }
    case 'identity_linked':
      return {
        subject: `Sign-in with ${notice.provider} added`,
        what: `Your account can now be signed in to with ${notice.provider}.`,
      }
    case 'identity_unlinked':
      return {
        subject: `Sign-in with ${notice.provider} removed`,
        what: `Your account can no longer be signed in to with ${notice.provider}.`,
      }
  }
}

export function securityNoticeEmail(notice: SecurityNotice, accountPage: string): MailContent {
  const { subject, what } = noticeText(notice)
  const before = ['Hello,', what, 'To see the sign-in methods and sessions of your account, open:']
  const after = [
    'If this was you, there is nothing to do. If it was not, change your password and review your account now.',
  ]
  return {
    subject,
    text: [...before, accountPage, ...after].join('\n\n') + '\n',
    html: html(before, accountPage, 'Review your account', after),
  }
}
