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
