import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateOpaqueToken } from '../../../src/auth/opaque-tokens.js'
import { describeEachEngine, register, uniqueUser } from '../../support/app.js'
import {
  MAIL_ENV,
  mailsTo,
  waitForToken,
  refusalsLeft,
  verifyEmail,
  askForReset,
  capturedLog,
  buildAppOn,
} from './support.js'

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
