/**
 * The account-link rules where HTTP cannot reach a case, over stand-ins for the repositories: an
 * account deleted between the request's authentication (or the reset link's check) and its
 * change, and the account emails prepared in the background, whose failures only show in the log.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateOpaqueToken, hashOpaqueToken } from '../../src/auth/opaque-tokens.js'
import type { Mailer } from '../../src/mail/mailer.js'
import type { MailMessage } from '../../src/mail/transports.js'
import type { Repositories } from '../../src/repositories/index.js'
import type { AccountDependencies } from '../../src/services/account-dependencies.js'
import { createAccountEmails } from '../../src/services/account-emails.js'
import type { ServiceLogger } from '../../src/services/context.js'
import { DomainError } from '../../src/services/errors.js'
import { changePassword } from '../../src/services/password-change.js'
import { resetPassword } from '../../src/services/password-recovery.js'
import { TestClock } from '../support/clock.js'

interface LogLine {
  level: keyof ServiceLogger
  object: Record<string, unknown>
  message: string | undefined
}

function recordingLog() {
  const lines: LogLine[] = []
  const at = (level: keyof ServiceLogger) => (object: object, message?: string) =>
    lines.push({ level, object: object as Record<string, unknown>, message })
  const log: ServiceLogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
  return { lines, log }
}

/** Account dependencies over these repositories; anything else the rule touches is recorded. */
function accountDependencies(repos: Partial<Record<keyof Repositories, object>>) {
  const touched: string[] = []
  const deps: AccountDependencies = {
    repos: repos as unknown as Repositories,
    transaction: async (work) => work(repos as unknown as Repositories),
    sessions: {
      endAllSessionsOf: async () => {
        touched.push('sessions ended')
      },
    },
    audit: {
      record: async (_context: unknown, event: { event: string }) => {
        touched.push(`audit ${event.event}`)
      },
    } as unknown as AccountDependencies['audit'],
    accountEmails: {} as AccountDependencies['accountEmails'],
    passwordMinLength: 8,
    clock: new TestClock(),
  }
  return { deps, touched }
}

const context = (actor?: { id: number }) => ({
  ...(actor ? { actor: { id: actor.id, role: 'user' as const, sessionId: 'session' } } : {}),
  ip: '192.0.2.1',
  userAgent: undefined,
  log: recordingLog().log,
})

async function refused(promise: Promise<unknown>, kind: string, detail: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DomainError, String(error))
    assert.equal(error.kind, kind)
    assert.match(error.detail, detail)
    return true
  })
}

test('a password change for an account deleted since its token was checked: 401, the account no longer exists', async () => {
  const { deps, touched } = accountDependencies({
    users: {
      findPasswordHash: async () => undefined,
      update: async () => touched.push('user updated'),
    },
  })
  await refused(
    changePassword(deps, context({ id: 7 }), {
      currentPassword: 'the current passphrase',
      newPassword: 'a new long passphrase',
    }),
    'unauthenticated',
    /^The account no longer exists$/,
  )
  assert.deepEqual(touched, [])
})

test('a reset for an account deleted once its link was checked: 400, the same answer as any invalid link, nothing changed', async () => {
  const token = generateOpaqueToken()
  const { deps, touched } = accountDependencies({
    accountTokens: {
      findUsable: async (hash: string) =>
        hash === hashOpaqueToken(token) ? { user_id: 7, email: 'gone@example.com' } : undefined,
      consume: async () => true,
    },
    users: {
      findById: async () => undefined,
      update: async () => touched.push('user updated'),
    },
  })
  await refused(
    resetPassword(deps, context(), { token, newPassword: 'a new long passphrase' }),
    'bad_request',
    /^This password reset link is not valid: it may have expired or been used already\./,
  )
  assert.deepEqual(touched, [])
})

// ------------------------------------------------------------------ account emails

const RECIPIENT = { id: 7, email: 'someone@example.com', is_active: true }

function accountEmails(accountTokens: object) {
  const sent: MailMessage[] = []
  const mailer = { send: (message: MailMessage) => sent.push(message) } as unknown as Mailer
  const emails = createAccountEmails({
    repos: { accountTokens } as unknown as Repositories,
    mailer,
    links: {
      passwordReset: 'https://app.example/reset?t={token}',
      emailVerification: 'https://app.example/v/{token}',
      account: 'https://app.example/account',
    },
    clock: new TestClock(),
  })
  return { emails, sent }
}

const workingTokens = {
  findRecipientByEmail: async () => RECIPIENT,
  findObsolete: async () => [],
  deleteByHashes: async () => {},
  insert: async () => {},
}

test('a reset mailed without a callback: the link goes out and the log says it was queued, without an error', async () => {
  const { emails, sent } = accountEmails(workingTokens)
  const { lines, log } = recordingLog()
  emails.sendPasswordReset(RECIPIENT.email, log)
  assert.equal(await emails.whenIdle(5_000), true)
  assert.equal(sent.length, 1)
  assert.deepEqual(
    lines.map((line) => [line.level, line.object.event]),
    [['info', 'password_reset_requested']],
  )
})

test('a reset mailed with a callback: the callback hears of the user, and no log line is needed', async () => {
  const { emails, sent } = accountEmails(workingTokens)
  const { lines, log } = recordingLog()
  const queued: number[] = []
  emails.sendPasswordReset(RECIPIENT.email, log, async (userId) => {
    queued.push(userId)
  })
  assert.equal(await emails.whenIdle(5_000), true)
  assert.equal(sent.length, 1)
  assert.deepEqual(queued, [RECIPIENT.id])
  assert.deepEqual(lines, [])
})

test('an email that could not be prepared is logged as an error saying which email, and nothing is sent', async () => {
  const failure = new Error('the database is gone')
  const { emails, sent } = accountEmails({
    ...workingTokens,
    insert: async () => Promise.reject(failure),
  })
  const { lines, log } = recordingLog()
  emails.sendEmailVerification({ id: RECIPIENT.id, email: RECIPIENT.email }, log)
  emails.sendPasswordReset(RECIPIENT.email, log)
  assert.equal(await emails.whenIdle(5_000), true)
  assert.equal(sent.length, 0)
  assert.deepEqual(
    lines.map((line) => [line.level, line.message, line.object.err]),
    [
      ['error', 'an email verification email could not be prepared', failure],
      ['error', 'a password reset email could not be prepared', failure],
    ],
  )
})
