import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { redactUrl } from '../../src/http/logging.js'
import { bearer, testConfig, testEngines, uniqueUser, type TestDatabase } from '../support/app.js'
import { startSmtpInbox } from '../support/smtp-inbox.js'

// ------------------------------------------------------------------ a captured log

interface CapturedLog {
  /** Each write pino made: one per log call. */
  writes: string[]
  /** Everything written, as one text. */
  text: () => string
  /** The lines, parsed. */
  entries: () => Record<string, unknown>[]
  logger: { level: string; stream: { write: (chunk: string) => void } }
}

function captureLog(): CapturedLog {
  const writes: string[] = []
  return {
    writes,
    text: () => writes.join(''),
    entries: () => writes.map((chunk) => JSON.parse(chunk) as Record<string, unknown>),
    logger: { level: 'trace', stream: { write: (chunk) => writes.push(chunk) } },
  }
}

// ------------------------------------------------------------------ a real SMTP server, for the tokens

const inbox = await startSmtpInbox()
const SMTP_URL = inbox.url

/** Waits for a link to `page` mailed to `email`, and returns its token. */
async function mailedToken(email: string, page: 'reset-password' | 'verify-email'): Promise<string> {
  const link = new RegExp(`/${page}\\?token=([A-Za-z0-9_-]+)`)
  const deadline = Date.now() + 15_000
  for (;;) {
    const mail = inbox.mails.find(({ decoded }) => decoded.includes(`To: ${email}`) && link.test(decoded))
    if (mail) return link.exec(mail.decoded)![1]!
    if (Date.now() > deadline) throw new Error(`no ${page} link reached ${email}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// ------------------------------------------------------------------ the tests

for (const engine of testEngines()) {
  describe(`logs: secrets, request ids, forged lines [${engine.name}]`, { skip: engine.skip }, () => {
    let database: TestDatabase | undefined
    let app: FastifyInstance
    const log = captureLog()

    before(async () => {
      database = await engine.create()
      app = await buildApp(testConfig({ DATABASE_URL: database.url, SMTP_URL }), { logger: log.logger })
      // A careless route, as a future change might add one: it logs what the client sent.
      app.post('/test/careless-log', async (request) => {
        request.log.info({ body: request.body, headers: request.headers }, 'careless log line')
        return { ok: true }
      })
      await app.ready()
    })
    after(async () => {
      await app?.close()
      await database?.drop()
    })

    test('a full account flow leaves none of its secrets in the log', async () => {
      const secrets: Record<string, string> = {}
      const user = uniqueUser()
      secrets.password = user.password
      const registered = await app.inject({ method: 'POST', url: '/users/', payload: user })
      assert.equal(registered.statusCode, 201, registered.body)

      // Login as Swagger UI sends it (form), then refresh, a duplicate refresh, and reuse of the old refresh token.
      const login = await app.inject({
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ username: user.email, password: user.password }).toString(),
      })
      assert.equal(login.statusCode, 200, login.body)
      const first = login.json<{ access_token: string; refresh_token: string }>()
      secrets.access1 = first.access_token
      secrets.refresh1 = first.refresh_token
      secrets.authorization = `Bearer ${first.access_token}`
      secrets.cookie = 'session=cookie-secret-value-0123456789'

      const me = await app.inject({
        url: '/current-user',
        headers: { ...bearer(first.access_token), cookie: secrets.cookie },
      })
      assert.equal(me.statusCode, 200)
      // Email verification through the mailed token.
      const resend = await app.inject({
        method: 'POST',
        url: '/verify-email/resend',
        headers: bearer(first.access_token),
      })
      assert.equal(resend.statusCode, 202, resend.body)
      secrets.verifyToken = await mailedToken(user.email, 'verify-email')
      const verified = await app.inject({
        method: 'POST',
        url: '/verify-email',
        payload: { token: secrets.verifyToken },
      })
      assert.equal(verified.statusCode, 204, verified.body)
      // A client that puts its token in the address: Fastify logs every URL.
      await app.inject({ url: `/current-user?access_token=${first.access_token}` })
      await app.inject({ url: `/no-such-page?token=${first.refresh_token}&page=2` })

      const refreshed = await app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: first.refresh_token },
      })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
      const second = refreshed.json<{ access_token: string; refresh_token: string }>()
      secrets.access2 = second.access_token
      secrets.refresh2 = second.refresh_token
      const refreshWith = (refreshToken: string) =>
        app.inject({ method: 'POST', url: '/token/refresh', payload: { refresh_token: refreshToken } })
      // The used token again at once (a duplicate request): the same new refresh token comes back.
      const duplicate = await refreshWith(first.refresh_token)
      assert.equal(duplicate.statusCode, 200, duplicate.body)
      secrets.accessDuplicate = duplicate.json<{ access_token: string }>().access_token
      const rotatedAgain = (await refreshWith(second.refresh_token)).json<{
        access_token: string
        refresh_token: string
      }>()
      secrets.accessRotated = rotatedAgain.access_token
      secrets.refreshRotated = rotatedAgain.refresh_token
      // Once the session moved on, the first token is a reuse.
      assert.equal((await refreshWith(first.refresh_token)).statusCode, 401)

      // Failed logins: a wrong password, an unknown account, a body that is not JSON.
      secrets.wrongPassword = 'wrong-password-never-logged-41'
      secrets.unknownPassword = 'unknown-user-password-never-logged-42'
      secrets.brokenJson = 'broken-json-password-never-logged-43'
      assert.equal(
        (
          await app.inject({
            method: 'POST',
            url: '/login',
            payload: { username: user.email, password: secrets.wrongPassword },
          })
        ).statusCode,
        401,
      )
      assert.equal(
        (
          await app.inject({
            method: 'POST',
            url: '/login',
            payload: { username: `nobody-${user.email}`, password: secrets.unknownPassword },
          })
        ).statusCode,
        401,
      )
      assert.equal(
        (
          await app.inject({
            method: 'POST',
            url: '/login',
            headers: { 'content-type': 'application/json' },
            payload: `{"username":"${user.email}","password":"${secrets.brokenJson}"`,
          })
        ).statusCode,
        400,
      )
      secrets.invalidRegistration = 'invalid-registration-password-44'
      assert.equal(
        (
          await app.inject({
            method: 'POST',
            url: '/users/',
            payload: { name: '', email: 'not an email', password: secrets.invalidRegistration, extra: 1 },
          })
        ).statusCode,
        422,
      )

      // Password change, then reset through the mailed token.
      const pair = await app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
      })
      const third = pair.json<{ access_token: string; refresh_token: string }>()
      secrets.access3 = third.access_token
      secrets.refresh3 = third.refresh_token
      secrets.changedPassword = `${user.password}-changed`
      const changed = await app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: bearer(third.access_token),
        payload: { current_password: user.password, new_password: secrets.changedPassword },
      })
      assert.equal(changed.statusCode, 204, changed.body)

      assert.equal(
        (await app.inject({ method: 'POST', url: '/password-recovery', payload: { email: user.email } }))
          .statusCode,
        202,
      )
      secrets.resetToken = await mailedToken(user.email, 'reset-password')
      await app.inject({ url: `/reset-password?token=${secrets.resetToken}` })
      secrets.resetPassword = `${user.password}-reset`
      const reset = await app.inject({
        method: 'POST',
        url: '/reset-password',
        payload: { token: secrets.resetToken, new_password: secrets.resetPassword },
      })
      assert.equal(reset.statusCode, 204, reset.body)
      const again = await app.inject({
        method: 'POST',
        url: '/reset-password',
        payload: { token: secrets.resetToken, new_password: secrets.resetPassword },
      })
      assert.ok(again.statusCode >= 400)

      const last = await app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: secrets.resetPassword },
      })
      assert.equal(last.statusCode, 200, last.body)
      const fourth = last.json<{ access_token: string; refresh_token: string }>()
      secrets.access4 = fourth.access_token
      secrets.refresh4 = fourth.refresh_token

      // A careless log line of a whole body and its headers is redacted.
      const careless = {
        authorization: 'Bearer careless-header-value-46',
        cookie: 'sid=careless-cookie-47',
        password: 'careless-password-48',
        new_password: 'careless-new-password-49',
        current_password: 'careless-current-password-50',
        token: 'careless-nested-token-51',
        access_token: 'careless-access-token-52',
        refresh_token: 'careless-refresh-token-53',
      }
      await app.inject({
        method: 'POST',
        url: '/test/careless-log',
        headers: { authorization: careless.authorization, cookie: careless.cookie },
        payload: {
          password: careless.password,
          new_password: careless.new_password,
          current_password: careless.current_password,
          refresh_token: careless.refresh_token,
          nested: { token: careless.token, access_token: careless.access_token },
        },
      })
      for (const [name, value] of Object.entries(careless)) secrets[`careless ${name}`] = value
      const logout = await app.inject({
        method: 'POST',
        url: '/logout',
        headers: bearer(fourth.access_token),
      })
      assert.equal(logout.statusCode, 204)

      const text = log.text()
      // The log was really written, at the level that shows auth events and every request.
      const messages = log.entries().map((entry) => entry.msg)
      for (const expected of ['incoming request', 'request completed', 'careless log line'])
        assert.ok(messages.includes(expected), `the log has "${expected}"`)
      assert.ok(
        text.includes('"event":"login_failed"') || /login failed/i.test(text),
        'failed logins are logged',
      )
      assert.ok(text.includes('[Redacted]'), 'something was redacted')
      for (const [name, secret] of Object.entries(secrets))
        assert.equal(text.includes(secret), false, `the ${name} (${secret.slice(0, 12)}…) is in the log`)
    })

    test('every line of a request carries its request id: the sane one it sent, or a generated one', async () => {
      const before = log.writes.length
      const user = uniqueUser()
      await app.inject({
        method: 'POST',
        url: '/users/',
        payload: user,
        headers: { 'x-request-id': 'req.register-1' },
      })
      await app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: user.password },
        headers: { 'x-request-id': 'req:login-ok' },
      })
      await app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: user.email, password: 'not the password 1' },
        headers: { 'x-request-id': 'req_login-bad' },
      })
      await app.inject({ url: '/nowhere', headers: { 'x-request-id': 'req-404' } })
      await app.inject({ url: '/healthz', headers: { 'x-request-id': 'bad id with spaces' } })

      const lines = log.entries().slice(before)
      const byId = (id: string) => lines.filter((line) => line.reqId === id)
      for (const id of ['req.register-1', 'req:login-ok', 'req_login-bad', 'req-404']) {
        const messages = byId(id).map((line) => line.msg)
        assert.ok(messages.includes('incoming request'), `${id}: incoming request`)
        assert.ok(messages.includes('request completed'), `${id}: request completed`)
      }
      // The auth events of a request are on lines with its id.
      assert.ok(
        byId('req:login-ok').some(
          (line) => /login/i.test(String(line.msg)) && line.msg !== 'incoming request',
        ),
        'the successful login is logged with the request id',
      )
      assert.ok(
        byId('req_login-bad').some((line) => /fail/i.test(String(line.msg)) || line.event === 'login_failed'),
        'the failed login is logged with the request id',
      )
      // A line about a request always names it: every line with req, res or an event has a reqId.
      for (const line of lines)
        if ('req' in line || 'res' in line || ('event' in line && line.component === undefined))
          assert.ok(typeof line.reqId === 'string', `no reqId on ${JSON.stringify(line)}`)
      assert.equal(
        lines.some((line) => line.reqId === 'bad id with spaces'),
        false,
      )
      const healthz = lines.find(
        (line) =>
          (line.req as { url?: string } | undefined)?.url === '/healthz' && line.msg === 'incoming request',
      )
      assert.match(String(healthz?.reqId), /^[0-9a-f-]{36}$/)
    })

    test('control characters and quotes in user input cannot forge a log line', async () => {
      const before = log.writes.length
      const forged = '{"level":60,"time":1,"msg":"forged: admin logged in","reqId":"x"}'
      const hostile = [
        `alice\n${forged}`,
        `alice\r\n${forged}`,
        `alice\u2028${forged}\u2029`,
        `alice\u0000\u001b[2J\u0007${forged}`,
        `alice"}\n${forged}`,
      ]
      for (const username of hostile) {
        // Through a real route (the login name is refused, but the request is logged) …
        await app.inject({ method: 'POST', url: '/login', payload: { username, password: 'x' } })
        // … and through a route that writes the input itself into the log.
        await app.inject({ method: 'POST', url: '/test/careless-log', payload: { username } })
      }
      await app.inject({
        url: `/nothing?q=${encodeURIComponent(`\n${forged}`)}"}`,
        headers: { 'x-request-id': forged },
      })

      const writes = log.writes.slice(before)
      assert.ok(writes.length > 10)
      let carried = 0
      for (const chunk of writes) {
        // One write, one line: a single trailing newline, no other line break of any kind.
        assert.ok(chunk.endsWith('\n'), 'each entry ends its line')
        // (U+2028 and U+2029 are valid inside a JSON string and break no JSON-lines reader.)
        const raw = [...chunk.slice(0, -1)].filter((c) => c.charCodeAt(0) < 0x20)
        assert.deepEqual(raw, [], 'no raw control character')
        const entry = JSON.parse(chunk) as Record<string, unknown>
        assert.notEqual(entry.msg, 'forged: admin logged in')
        assert.notEqual(entry.level, 60)
        if (JSON.stringify(entry).includes('forged: admin logged in')) carried += 1
      }
      // The hostile text did reach the log, as data inside a field, escaped.
      assert.ok(carried >= hostile.length, `the hostile input was logged ${carried} times`)
      const lines = log.text().split('\n').filter(Boolean)
      assert.equal(lines.length, log.writes.length, 'exactly one JSON object per line')
    })
  })
}

describe('redactUrl', () => {
  test('the values of secret query parameters are replaced; the rest is kept', () => {
    assert.equal(redactUrl('/reset-password?token=abc'), '/reset-password?token=[Redacted]')
    assert.equal(
      redactUrl('/x?page=2&access_token=abc&Refresh_Token=def&q=token'),
      '/x?page=2&access_token=[Redacted]&Refresh_Token=[Redacted]&q=token',
    )
    assert.equal(redactUrl('/x?%74oken=abc'), '/x?%74oken=[Redacted]')
    assert.equal(redactUrl('/x?password'), '/x?password=[Redacted]')
    assert.equal(redactUrl('/plain/path'), '/plain/path')
    assert.equal(redactUrl('/x?bad=%E0%A4%A'), '/x?bad=%E0%A4%A')
  })
})
