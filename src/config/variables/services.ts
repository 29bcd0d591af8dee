import type { Context } from '../declare.js'
import { variable } from '../declare.js'
import { linkTemplate, text, url } from '../readers.js'
import { PUBLIC_URL } from './server.js'

export const REDIS_URL = variable({
  name: 'REDIS_URL',
  type: url('redis:', 'rediss:'),
  default: undefined,
  fills: 'redisUrl',
  description: 'shared state (rate limits, revocations) for several instances',
  examples: [{ value: 'redis://127.0.0.1:6379' }],
})

export const REDIS_KEY_PREFIX = variable({
  name: 'REDIS_KEY_PREFIX',
  type: text(),
  default: 'fastauth:',
  fills: 'redisKeyPrefix',
  description: 'prefix of every Redis key, so that several deployments can share one Redis',
})

export const SMTP_URL = variable({
  name: 'SMTP_URL',
  type: url('smtp:', 'smtps:'),
  default: undefined,
  fills: 'smtpUrl',
  description: 'outgoing mail; unset: emails are not sent, their links are logged',
  examples: [{ value: 'smtp://user:pass@mail.example.com:587' }],
})

export const MAIL_FROM = variable({
  name: 'MAIL_FROM',
  type: text('mailbox, like `Name <address>`'),
  default: 'FastAuth API <no-reply@localhost>',
  fills: 'mailFrom',
  description: 'the sender of the emails',
})

/** Links in emails open the server's own pages unless an app with its own frontend says otherwise. */
function serverPage(page: string) {
  return ({ get }: Context) => `${get(PUBLIC_URL).replace(/\/+$/, '')}/${page}?token={token}`
}

export const PASSWORD_RESET_URL = variable({
  name: 'PASSWORD_RESET_URL',
  type: linkTemplate,
  default: serverPage('reset-password'),
  documentedDefault: '`PUBLIC_URL/reset-password?token={token}`',
  fills: 'passwordResetUrl',
  description: 'the link in password reset emails: point it at your own frontend',
})

export const EMAIL_VERIFICATION_URL = variable({
  name: 'EMAIL_VERIFICATION_URL',
  type: linkTemplate,
  default: serverPage('verify-email'),
  documentedDefault: '`PUBLIC_URL/verify-email?token={token}`',
  fills: 'emailVerificationUrl',
  description: 'the link in verification emails: point it at your own frontend',
})

export const SERVICE_VARIABLES = [
  REDIS_URL,
  REDIS_KEY_PREFIX,
  SMTP_URL,
  MAIL_FROM,
  PASSWORD_RESET_URL,
  EMAIL_VERIFICATION_URL,
]
