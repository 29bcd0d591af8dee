import { createRequire } from 'node:module'
import type { ServiceLogger } from '../services/context.js'
import type nodemailer from 'nodemailer'

/** nodemailer, loaded only when SMTP_URL is set. */
const loadNodemailer = () => createRequire(import.meta.url)('nodemailer') as typeof nodemailer

export interface MailMessage {
  to: string
  subject: string
  text: string
  html?: string
}

/** Where messages go: hands one over, and rejects when that failed. */
export interface MailTransport {
  deliver(message: MailMessage, signal: AbortSignal): Promise<void>
  close(): void
}

/**
 * Timeouts well below nodemailer's defaults (2 minutes to connect, 10 minutes of silence): a mail
 * server that hangs must not hold a delivery slot, or the shutdown, for minutes.
 */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 }

/** SMTP (smtp:// with STARTTLS when offered, or smtps://), one connection per message. */
export function createSmtpTransport(smtpUrl: string, from: string): MailTransport {
  const transport = loadNodemailer().createTransport({ url: smtpUrl, ...SMTP_TIMEOUTS }, { from })
  return {
    async deliver(message, signal) {
      await transport.sendMail({ ...message, signal })
    },
    close: () => transport.close(),
  }
}

const LINK = /https?:\/\/[^\s<>"]+/g

/**
 * Without SMTP_URL, development still works end to end: each email is written to the log with
 * its links, to be copied from there. In production a link in the log would hand the account to
 * whoever reads the logs, so there only the fact that nothing was sent is logged.
 */
export function createLogTransport(log: ServiceLogger, options: { showLinks: boolean }): MailTransport {
  return {
    async deliver(message) {
      const mail = { to: message.to, subject: message.subject }
      if (options.showLinks)
        log.info(
          { mail: { ...mail, links: message.text.match(LINK) ?? [] } },
          'email not sent (SMTP_URL is not set); its links are logged instead',
        )
      else log.warn({ mail }, 'email not sent: SMTP_URL is not set')
    },
    close() {},
  }
}
