import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { SMTPServer } from 'smtp-server'
import { buildApp, type BuildOptions } from '../src/app.js'
import { generateOpaqueToken, hashOpaqueToken } from '../src/auth/opaque-tokens.js'
import { createMailer } from '../src/mail/mailer.js'
import type { MailTransport } from '../src/mail/transports.js'
import {
  assertProblem,
  bearer,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  uniqueUser,
  type EngineContext,
} from './helper.js'

// ------------------------------------------------------------------ a real SMTP server

interface ReceivedMail {
  to: string[]
  /** The message as received, headers and MIME parts. */
  raw: string
  /** The message with its quoted-printable encoding undone, to read links from. */
  decoded: string
}

const inbox: ReceivedMail[] = []
/** How many more deliveries to each recipient the server refuses with a temporary error. */
const refusalsLeft = new Map<string, number>()

/**
 * Mail clients encode lines longer than 76 characters (a link with a token is one) as
 * quoted-printable: soft line breaks and =XX escapes.
 */
const decodeQuotedPrintable = (raw: string) =>
  raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)))

const smtpServer = new SMTPServer({
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
      inbox.push({
        to: session.envelope.rcptTo.map((recipient) => recipient.address.toLowerCase()),
        raw,
        decoded: decodeQuotedPrintable(raw),
      })
      callback()
    })
  },
})
await new Promise<void>((resolve) => smtpServer.listen(0, '127.0.0.1', () => resolve()))
const SMTP_URL = `smtp://127.0.0.1:${(smtpServer.server.address() as AddressInfo).port}`
after(() => new Promise<void>((resolve) => smtpServer.close(() => resolve())))

const PUBLIC_URL = 'https://accounts.example.test'
const MAIL_FROM = 'Example Accounts <accounts@example.test>'
const MAIL_ENV = { SMTP_URL, PUBLIC_URL, MAIL_FROM }

type Page = 'reset-password' | 'verify-email'

const mailsTo = (recipient: string) => inbox.filter((mail) => mail.to.includes(recipient.toLowerCase()))

function tokensIn(mails: ReceivedMail[], page: Page): string[] {
  const link = new RegExp(`^${PUBLIC_URL.replace(/\./g, '\\.')}/${page}\\?token=([A-Za-z0-9_-]{43})$`, 'gm')
  return mails.flatMap((mail) => [...mail.decoded.matchAll(link)].map((match) => match[1]!))
}

/**
 * Polls the inbox until `count` links to `page` reached `recipient`, and returns their tokens
 * (oldest first). The timeout is a safety net: mail usually arrives within milliseconds.
 */
async function waitForTokens(
  recipient: string,
  page: Page,
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

async function waitForToken(recipient: string, page: Page): Promise<string> {
  return (await waitForTokens(recipient, page)).at(-1)!
}

// ------------------------------------------------------------------ requests

async function loginPair(app: FastifyInstance, username: string, password: string) {
  return app.inject({ method: 'POST', url: '/login', payload: { username, password } })
}

async function tokenPair(app: FastifyInstance, username: string, password: string) {
  const response = await loginPair(app, username, password)
  assert.equal(response.statusCode, 200, response.body)
  return response.json<{ access_token: string; refresh_token: string }>()
}

const currentUser = (app: FastifyInstance, accessToken: string) =>
  app.inject({ method: 'GET', url: '/current-user', headers: bearer(accessToken) })

const verifyEmail = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/verify-email', payload: { token } })

const askForReset = (app: FastifyInstance, email: string) =>
  app.inject({ method: 'POST', url: '/password-recovery', payload: { email } })

const resetPassword = (app: FastifyInstance, token: string, newPassword: string) =>
  app.inject({ method: 'POST', url: '/reset-password', payload: { token, new_password: newPassword } })

async function resetTokenFor(app: FastifyInstance, email: string): Promise<string> {
  const before = tokensIn(mailsTo(email), 'reset-password').length
  const response = await askForReset(app, email)
  assert.equal(response.statusCode, 202)
  return (await waitForTokens(email, 'reset-password', before + 1)).at(-1)!
}

/** Log lines written by an app, as parsed JSON. */
function capturedLog() {
  const lines: Record<string, unknown>[] = []
  return {
    lines,
    logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    text: () => lines.map((line) => JSON.stringify(line)).join('\n'),
  }
}

/** A second app on the same database as the engine's, with other settings. */
async function buildAppOn(
  ctx: EngineContext,
  env: Record<string, string>,
  logger: BuildOptions['logger'] = false,
) {
  const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), {
    logger,
    migrate: false,
  })
  await app.ready()
  return app
}

// ------------------------------------------------------------------ email verification

describeEachEngine(
  'email verification',
  (ctx) => {
    test('registration mails a link built from PUBLIC_URL, from MAIL_FROM; the link verifies the email, once', async () => {
      const user = await registerAndLogin(ctx.app)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        false,
      )

      const token = await waitForToken(user.email, 'verify-email')
      const [mail] = mailsTo(user.email)
      assert.match(mail!.raw, /^From: Example Accounts <accounts@example\.test>\r?$/m)
      assert.match(mail!.raw, /^Subject: Verify your email address\r?$/m)
      assert.match(mail!.raw, /^Content-Type: text\/html/m, 'an HTML alternative is included')

      const verified = await verifyEmail(ctx.app, token)
      assert.equal(verified.statusCode, 204, verified.body)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )

      const again = assertProblem(await verifyEmail(ctx.app, token), 400)
      assert.match(again.detail, /not valid/)
    })

    test('a token for a previous email does not verify the email the account has changed to', async () => {
      const user = await registerAndLogin(ctx.app)
      const oldToken = await waitForToken(user.email, 'verify-email')
      const newEmail = uniqueUser().email
      const changed = await ctx.app.inject({
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers: user.headers,
        payload: { email: newEmail, current_password: user.password },
      })
      assert.equal(changed.statusCode, 200, changed.body)
      const newToken = await waitForToken(newEmail, 'verify-email')

      assertProblem(await verifyEmail(ctx.app, oldToken), 400)
      const me = (await currentUser(ctx.app, user.token)).json<{ email: string; email_verified: boolean }>()
      assert.deepEqual([me.email, me.email_verified], [newEmail, false])

      assert.equal((await verifyEmail(ctx.app, newToken)).statusCode, 204)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
    })

    test('resend mails a new link that works; once the email is verified, resend is a 409', async () => {
      const user = await registerAndLogin(ctx.app)
      const [first] = await waitForTokens(user.email, 'verify-email', 1)

      const resend = () =>
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers })
      const accepted = await resend()
      assert.equal(accepted.statusCode, 202, accepted.body)
      assert.match(accepted.json<{ detail: string }>().detail, new RegExp(user.email))
      const [, second] = await waitForTokens(user.email, 'verify-email', 2)
      assert.notEqual(second, first)

      assert.equal((await verifyEmail(ctx.app, second!)).statusCode, 204)
      assert.equal(
        (await currentUser(ctx.app, user.token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
      assert.match(assertProblem(await resend(), 409).detail, /already verified/)
    })

    test('resend needs an access token', async () => {
      assertProblem(await ctx.app.inject({ method: 'POST', url: '/verify-email/resend' }), 401)
    })

    test('with REQUIRE_EMAIL_VERIFICATION, login is a 403 with a clear detail until the email is verified', async () => {
      const strict = await buildAppOn(ctx, { ...MAIL_ENV, REQUIRE_EMAIL_VERIFICATION: 'true' })
      try {
        const user = await register(strict)
        const refused = assertProblem(await loginPair(strict, user.email, user.password), 403)
        assert.match(refused.detail, /not verified/)
        // A wrong password still says nothing about verification.
        assertProblem(await loginPair(strict, user.email, `${user.password}x`), 401)

        assert.equal(
          (await verifyEmail(strict, await waitForToken(user.email, 'verify-email'))).statusCode,
          204,
        )
        assert.equal((await loginPair(strict, user.email, user.password)).statusCode, 200)
      } finally {
        await strict.close()
      }
    })
  },
  { env: MAIL_ENV },
)

// ------------------------------------------------------------------ password recovery and reset

describeEachEngine(
  'password recovery and reset',
  (ctx) => {
    test('recover → reset: the old password and every old session stop working, the new password works', async () => {
      const user = await register(ctx.app)
      const sessions = [
        await tokenPair(ctx.app, user.email, user.password),
        await tokenPair(ctx.app, user.name, user.password),
      ]
      // The address is matched as it is stored, whatever its case.
      const token = await resetTokenFor(ctx.app, user.email.toUpperCase())
      const [mail] = mailsTo(user.email).filter((received) =>
        /^Subject: Reset your password\r?$/m.test(received.raw),
      )
      assert.ok(mail, 'the reset email has its subject')

      const newPassword = 'a brand new passphrase'
      const reset = await resetPassword(ctx.app, token, newPassword)
      assert.equal(reset.statusCode, 204, reset.body)

      assertProblem(await loginPair(ctx.app, user.email, user.password), 401)
      const fresh = await tokenPair(ctx.app, user.email, newPassword)
      assert.equal((await currentUser(ctx.app, fresh.access_token)).statusCode, 200)
      for (const old of sessions) {
        assertProblem(await currentUser(ctx.app, old.access_token), 401)
        const refreshed = await ctx.app.inject({
          method: 'POST',
          url: '/token/refresh',
          payload: { refresh_token: old.refresh_token },
        })
        assertProblem(refreshed, 401)
      }
      // The link reached the account's address, which proves that address too.
      assert.equal(
        (await currentUser(ctx.app, fresh.access_token)).json<{ email_verified: boolean }>().email_verified,
        true,
      )
    })

    test('an unknown, a used and an expired reset token all get the same 400, and change nothing', async () => {
      const user = await register(ctx.app)
      const used = await resetTokenFor(ctx.app, user.email)
      assert.equal((await resetPassword(ctx.app, used, 'first new password')).statusCode, 204)

      const other = await register(ctx.app)
      const expired = await resetTokenFor(ctx.app, other.email)
      const aged = await ctx.app.db
        .updateTable('account_tokens')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('token_hash', '=', hashOpaqueToken(expired))
        .executeTakeFirst()
      assert.equal(Number(aged.numUpdatedRows), 1)

      const answers = [
        await resetPassword(ctx.app, generateOpaqueToken(), 'another new password'),
        await resetPassword(ctx.app, used, 'another new password'),
        await resetPassword(ctx.app, expired, 'another new password'),
      ]
      const bodies = answers.map((answer) => assertProblem(answer, 400))
      assert.match(bodies[0]!.detail, /expired|used/)
      assert.deepEqual(bodies[1], bodies[0])
      assert.deepEqual(bodies[2], bodies[0])

      assert.equal((await loginPair(ctx.app, user.email, 'first new password')).statusCode, 200)
      assert.equal((await loginPair(ctx.app, user.email, 'another new password')).statusCode, 401)
      assert.equal((await loginPair(ctx.app, other.email, other.password)).statusCode, 200)
    })

    test('a too-short new password is a 422 naming new_password; the password and the token stay as they were', async () => {
      const user = await register(ctx.app)
      const token = await resetTokenFor(ctx.app, user.email)
      const refused = assertProblem(await resetPassword(ctx.app, token, 'short'), 422)
      assert.deepEqual(
        refused.errors?.map((issue) => issue.field),
        ['new_password'],
      )
      assert.equal((await loginPair(ctx.app, user.email, user.password)).statusCode, 200)
      assert.equal((await resetPassword(ctx.app, token, 'long enough this time')).statusCode, 204)
    })

    test('a newer reset link replaces the older one', async () => {
      const user = await register(ctx.app)
      const older = await resetTokenFor(ctx.app, user.email)
      const newer = await resetTokenFor(ctx.app, user.email)
      assertProblem(await resetPassword(ctx.app, older, 'from the older link'), 400)
      assert.equal((await resetPassword(ctx.app, newer, 'from the newer link')).statusCode, 204)
    })

    test('two resets at once with one token: exactly one succeeds', async () => {
      const user = await register(ctx.app)
      const token = await resetTokenFor(ctx.app, user.email)
      const answers = await Promise.all([
        resetPassword(ctx.app, token, 'the first new password'),
        resetPassword(ctx.app, token, 'the second new password'),
      ])
      assert.deepEqual(answers.map((answer) => answer.statusCode).sort(), [204, 400])
      const winner = answers[0]!.statusCode === 204 ? 'the first new password' : 'the second new password'
      assert.equal((await loginPair(ctx.app, user.email, winner)).statusCode, 200)
    })

    test('links asked for at once for one account all arrive', async () => {
      const user = await registerAndLogin(ctx.app)
      const answers = await Promise.all([
        askForReset(ctx.app, user.email),
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers }),
        askForReset(ctx.app, user.email),
        ctx.app.inject({ method: 'POST', url: '/verify-email/resend', headers: user.headers }),
      ])
      assert.deepEqual(
        answers.map((answer) => answer.statusCode),
        [202, 202, 202, 202],
      )
      await waitForTokens(user.email, 'reset-password', 2)
      // One from the registration, two resent.
      const verifications = await waitForTokens(user.email, 'verify-email', 3)
      assert.equal((await verifyEmail(ctx.app, verifications[0]!)).statusCode, 204)
    })

    test('recovery answers the same for an unknown email, and mails nothing to it nor to an inactive account', async () => {
      const known = await register(ctx.app)
      const inactive = await register(ctx.app)
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', inactive.id).execute()
      const unknownEmail = uniqueUser().email

      const answers = [
        await askForReset(ctx.app, unknownEmail),
        await askForReset(ctx.app, inactive.email),
        await askForReset(ctx.app, known.email),
      ]
      for (const answer of answers) {
        assert.equal(answer.statusCode, 202)
        assert.equal(answer.body, answers[2]!.body)
        assert.equal(answer.headers['content-type'], answers[2]!.headers['content-type'])
      }
      await waitForTokens(known.email, 'reset-password')
      // Everything the requests started has finished: what has not arrived now never will.
      assert.equal(await ctx.app.accountEmails.whenIdle(10_000), true)
      assert.equal(await ctx.app.mailer.whenIdle(10_000), true)
      assert.deepEqual(mailsTo(unknownEmail), [])
      assert.deepEqual(tokensIn(mailsTo(inactive.email), 'reset-password'), [])
    })

    test('reset and verification tokens are stored only as SHA-256 hashes', async () => {
      const user = await register(ctx.app)
      const verification = await waitForToken(user.email, 'verify-email')
      const reset = await resetTokenFor(ctx.app, user.email)
      const rows = await ctx.app.db
        .selectFrom('account_tokens')
        .selectAll()
        .where('user_id', '=', user.id)
        .execute()
      assert.deepEqual(
        rows.map((row) => row.token_hash).sort(),
        [hashOpaqueToken(verification), hashOpaqueToken(reset)].sort(),
      )
      const stored = JSON.stringify(rows)
      assert.equal(stored.includes(verification), false)
      assert.equal(stored.includes(reset), false)
    })
  },
  { env: MAIL_ENV },
)

// ------------------------------------------------------------------ delivery

describeEachEngine('email delivery', (ctx) => {
  test('a mail the SMTP server refuses at first is retried until it arrives; the request did not wait for it', async () => {
    const log = capturedLog()
    const app = await buildAppOn(ctx, MAIL_ENV, log.logger)
    try {
      const user = uniqueUser()
      refusalsLeft.set(user.email, 1)
      const registered = await app.inject({ method: 'POST', url: '/users/', payload: user })
      assert.equal(registered.statusCode, 201)
      assert.deepEqual(mailsTo(user.email), [], 'answered before the refused mail could be retried')

      const token = await waitForToken(user.email, 'verify-email')
      assert.equal(refusalsLeft.get(user.email), 0)
      const warnings = log.lines.filter(
        (line) => (line.mail as { to?: string } | undefined)?.to === user.email,
      )
      assert.equal(warnings.length, 1, log.text())
      assert.equal(warnings[0]!.level, 40)
      assert.equal(log.text().includes(token), false, 'no token in the log')
      assert.equal((await verifyEmail(app, token)).statusCode, 204)
    } finally {
      await app.close()
    }
  })

  test('without SMTP_URL, each email is written to the log with its link, and the link works', async () => {
    const log = capturedLog()
    const app = await buildAppOn(ctx, {}, log.logger)
    try {
      const user = await register(app)
      const deadline = Date.now() + 10_000
      let links: string[] | undefined
      while (!links) {
        const line = log.lines.find((entry) => (entry.mail as { to?: string } | undefined)?.to === user.email)
        links = (line?.mail as { links?: string[] } | undefined)?.links
        if (!links && Date.now() > deadline)
          throw new Error(`no email to ${user.email} in the log:\n${log.text()}`)
        if (!links) await sleep(20)
      }
      assert.equal(links.length, 1)
      const match = /^http:\/\/127\.0\.0\.1:8000\/verify-email\?token=([A-Za-z0-9_-]{43})$/.exec(links[0]!)
      assert.ok(match, `unexpected link ${links[0]}`)
      assert.equal((await verifyEmail(app, match[1]!)).statusCode, 204)
    } finally {
      await app.close()
    }
  })

  test('recovery answers before looking the account up: a failing lookup still gets the same 202, and is logged', async () => {
    const log = capturedLog()
    const app = await buildAppOn(ctx, MAIL_ENV, log.logger)
    try {
      const user = await register(app)
      const normal = await askForReset(app, user.email)
      await app.accountEmails.whenIdle(10_000)
      app.repos.accountTokens.findRecipientByEmail = async () => {
        throw new Error('the database is gone')
      }
      const failing = await askForReset(app, user.email)
      assert.equal(failing.statusCode, 202)
      assert.equal(failing.body, normal.body)
      assert.equal(await app.accountEmails.whenIdle(10_000), true)
      assert.ok(
        log.lines.some((line) => line.level === 50 && /could not be prepared/.test(String(line.msg))),
        log.text(),
      )
    } finally {
      await app.close()
    }
  })

  test('opening a link page does not write its token to the log', async () => {
    const log = capturedLog()
    const app = await buildAppOn(ctx, {}, log.logger)
    try {
      const token = generateOpaqueToken()
      for (const page of ['/reset-password', '/verify-email'])
        assert.equal((await app.inject(`${page}?token=${token}`)).statusCode, 200)
      await app.inject({ method: 'POST', url: '/password-recovery', payload: { email: uniqueUser().email } })
      assert.ok(log.text().includes('/password-recovery'), 'requests are logged at this level')
      assert.equal(log.text().includes(token), false)
    } finally {
      await app.close()
    }
  })

  test('the link pages are HTML whose script is served separately, and they are not in the API docs', async () => {
    for (const [page, script] of [
      ['/reset-password', '/reset-password.js'],
      ['/verify-email', '/verify-email.js'],
    ] as const) {
      const html = await ctx.app.inject(`${page}?token=${generateOpaqueToken()}`)
      assert.equal(html.statusCode, 200)
      assert.match(String(html.headers['content-type']), /^text\/html/)
      assert.match(String(html.headers['content-security-policy']), /script-src 'self'/)
      assert.equal(html.headers['referrer-policy'], 'no-referrer')
      const scripts = [...html.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
      assert.deepEqual(
        scripts.map((tag) => [tag[1]!.match(/src="([^"]+)"/)?.[1], tag[2]!.trim()]),
        [[script, '']],
        'one script, from its own URL, none inline',
      )
      const js = await ctx.app.inject(script)
      assert.equal(js.statusCode, 200)
      assert.match(String(js.headers['content-type']), /^text\/javascript/)
      assert.match(js.body, new RegExp(`fetch\\('${page}'`))
    }
    const paths = Object.keys((await ctx.app.inject('/openapi.json')).json<{ paths: object }>().paths)
    for (const hidden of ['/reset-password.js', '/verify-email.js'])
      assert.equal(paths.includes(hidden), false)
    assert.ok(
      paths.includes('/reset-password') && paths.includes('/verify-email'),
      'the POST routes are documented',
    )
  })
})

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
