/**
 * A real SMTP server on a free local port, keeping every message it accepts: the tests read the
 * links the app mails (email verification, password reset) from it, as a user would. It is
 * started by the test file that needs it and closed after that file's tests.
 */
import type { AddressInfo } from 'node:net'
import { after } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { SMTPServer } from 'smtp-server'

export interface ReceivedMail {
  to: string[]
  /** The message as received, headers and MIME parts. */
  raw: string
  /** The message with its quoted-printable encoding undone, to read links from. */
  decoded: string
}

/** The pages the mailed links open. */
export type MailPage = 'reset-password' | 'verify-email'

export const PUBLIC_URL = 'https://accounts.example.test'
export const MAIL_FROM = 'Example Accounts <accounts@example.test>'

/**
 * Mail clients encode lines longer than 76 characters (a link with a token is one) as
 * quoted-printable: soft line breaks and =XX escapes.
 */
export const decodeQuotedPrintable = (raw: string) =>
  raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)))

/** The tokens of the links to `page` (under PUBLIC_URL) in these messages, oldest first. */
export function tokensIn(mails: ReceivedMail[], page: MailPage): string[] {
  const link = new RegExp(`^${PUBLIC_URL.replace(/\./g, '\\.')}/${page}\\?token=([A-Za-z0-9_-]{43})$`, 'gm')
  return mails.flatMap((mail) => [...mail.decoded.matchAll(link)].map((match) => match[1]!))
}

export async function startSmtpInbox() {
  const mails: ReceivedMail[] = []
  /** How many more deliveries to each recipient the server refuses with a temporary error. */
  const refusalsLeft = new Map<string, number>()

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const recipient = address.address.toLowerCase()
      const left = refusalsLeft.get(recipient) ?? 0
      if (left > 0) {
        refusalsLeft.set(recipient, left - 1)
        return callback(Object.assign(new Error('Mailbox busy, try again later'), { responseCode: 451 }))
      }
      callback()
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        mails.push({
          to: session.envelope.rcptTo.map((recipient) => recipient.address.toLowerCase()),
          raw,
          decoded: decodeQuotedPrintable(raw),
        })
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`
  const mailsTo = (recipient: string) => mails.filter((mail) => mail.to.includes(recipient.toLowerCase()))

  /**
   * Polls the inbox until `count` links to `page` reached `recipient`, and returns their tokens
   * (oldest first). The timeout is a safety net: mail usually arrives within milliseconds.
   */
  async function waitForTokens(
    recipient: string,
    page: MailPage,
    count = 1,
    timeoutMs = 15_000,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const tokens = tokensIn(mailsTo(recipient), page)
      if (tokens.length >= count) return tokens
      if (Date.now() > deadline)
        throw new Error(`${count} ${page} link(s) to ${recipient} did not arrive within ${timeoutMs} ms`)
      await sleep(20)
    }
  }

  /** The subjects of the mails `recipient` got, once `count` arrived (oldest first; verification mails aside). */
  async function waitForSubjects(recipient: string, count: number, timeoutMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const subjects = mailsTo(recipient)
        .map((mail) => /^Subject: (.*)$/m.exec(mail.decoded)?.[1] ?? '')
        .filter((subject) => subject !== 'Verify your email address')
      if (subjects.length >= count) return subjects
      if (Date.now() > deadline)
        throw new Error(`${count} mails to ${recipient} did not arrive: ${subjects.join(', ')}`)
      await sleep(20)
    }
  }

  return {
    waitForSubjects,
    /** The SMTP_URL to give the app. */
    url,
    /** The settings that make the app mail through this server, with links under PUBLIC_URL. */
    env: { SMTP_URL: url, PUBLIC_URL, MAIL_FROM },
    mails,
    refusalsLeft,
    mailsTo,
    waitForTokens,
    /** The newest token of a link to `page` mailed to `recipient`, once one arrived. */
    waitForToken: async (recipient: string, page: MailPage) => (await waitForTokens(recipient, page)).at(-1)!,
  }
}
