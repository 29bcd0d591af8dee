import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { createMailer } from '../../src/mail/mailer.js'
import type { MailTransport } from '../../src/mail/transports.js'

// ------------------------------------------------------------------ the mail queue on its own

/** A logger that keeps what it is given, in the shape of Fastify's. */
function recordingLogger() {
  const entries: { level: string; data: unknown; message?: string }[] = []
  const record = (level: string) => (data: unknown, message?: string) =>
    entries.push({ level, data, message })
  const log = {
    level: 'info',
    fatal: record('fatal'),
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: record('debug'),
    trace: record('trace'),
    silent: () => {},
    child: () => log,
  }
  return { log: log as unknown as FastifyBaseLogger, entries }
}

const message = {
  to: 'someone@example.com',
  subject: 'Reset your password',
  text: 'Open https://example.test/reset-password?token=SECRET-TOKEN-VALUE\n',
}

describe('the mail queue', () => {
  test('a mail that keeps failing is tried three times, then given up with one error, and no content logged', async () => {
    const { log, entries } = recordingLogger()
    let attempts = 0
    const transport: MailTransport = {
      deliver: async () => {
        attempts += 1
        throw Object.assign(new Error('Connection refused'), { code: 'ECONNECTION' })
      },
      close() {},
    }
    const mailer = createMailer({ transport, log, retryDelaysMs: [5, 10] })
    mailer.send(message)
    assert.equal(await mailer.whenIdle(5_000), true)
    assert.equal(attempts, 3)
    assert.deepEqual(
      entries.map((entry) => entry.level),
      ['warn', 'warn', 'error'],
    )
    assert.equal(JSON.stringify(entries).includes('SECRET-TOKEN-VALUE'), false)
    assert.match(JSON.stringify(entries), /someone@example\.com/)
  })

  test('send returns before delivery, and closing waits for the mail being delivered', async () => {
    const { log } = recordingLogger()
    const delivered: string[] = []
    const transport: MailTransport = {
      deliver: async (mail) => {
        await sleep(50)
        delivered.push(mail.to)
      },
      close() {},
    }
    const mailer = createMailer({ transport, log })
    mailer.send(message)
    assert.deepEqual(delivered, [])
    await mailer.close(5_000)
    assert.deepEqual(delivered, [message.to])
  })

  test('closing gives up on a delivery that outlasts the grace period, and says so', async () => {
    const { log, entries } = recordingLogger()
    let closed = false
    const transport: MailTransport = {
      // A mail server that never answers: only the abort signal ends the delivery.
      deliver: (_mail, signal) =>
        new Promise((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
      close: () => {
        closed = true
      },
    }
    const mailer = createMailer({ transport, log })
    mailer.send(message)
    mailer.send({ ...message, to: 'second@example.com' })
    await mailer.close(50)
    assert.equal(closed, true)
    const abandoned = entries.filter(
      (entry) => entry.level === 'error' && /abandoned/.test(entry.message ?? ''),
    )
    assert.deepEqual(abandoned.map((entry) => (entry.data as { mail: { to: string } }).mail.to).sort(), [
      'second@example.com',
      'someone@example.com',
    ])
  })
})
