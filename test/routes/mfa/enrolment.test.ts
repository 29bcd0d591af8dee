import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import { codeAt, enrolTotp, eventsOf, stepOf, userWithToken, wrongCodeAt } from './support.js'

const clock = new TestClock()

const TOTP_ACTIVE = 'TOTP is already active on this account: disable it first (DELETE /mfa/totp).'

describeEachEngine(
  'TOTP enrolment',
  (ctx) => {
    const start = (headers: Record<string, string>) =>
      ctx.app.inject({ method: 'POST', url: '/mfa/totp', headers })
    const confirm = (headers: Record<string, string>, payload: unknown) =>
      ctx.app.inject({ method: 'POST', url: '/mfa/totp/confirm', headers, payload: payload as object })
    const factorRow = (userId: number) =>
      ctx.app.db.selectFrom('totp_factors').selectAll().where('user_id', '=', userId).executeTakeFirst()
    const status = async (headers: Record<string, string>) =>
      (await ctx.app.inject({ method: 'GET', url: '/mfa', headers })).json<Record<string, unknown>>()

    test('starting answers the secret, its otpauth URI and a QR code, no-store; the row holds it encrypted, pending', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const response = await start(user.headers)
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const body = response.json<{ secret: string; otpauth_uri: string; qr_svg: string }>()
      assert.deepEqual(Object.keys(body).sort(), ['otpauth_uri', 'qr_svg', 'secret'])
      assert.match(body.secret, /^[A-Z2-7]{32}$/)
      assert.ok(body.otpauth_uri.startsWith('otpauth://totp/fastauth-api:'), body.otpauth_uri)
      assert.ok(body.otpauth_uri.includes(`secret=${body.secret}`))
      assert.ok(body.qr_svg.startsWith('<svg'))
      const row = await factorRow(user.id)
      assert.ok(row)
      assert.equal(row.confirmed_at, null)
      assert.ok(!row.secret_encrypted.includes(body.secret), 'never stored in clear')
      assert.match(row.secret_encrypted, /^v1\./)
      assert.deepEqual(await status(user.headers), {
        factors: [],
        totp: 'pending',
        passkeys: 0,
        recovery_codes_left: 0,
        enrolment_required: false,
      })
      assert.deepEqual(
        (await eventsOf(ctx.app, user.id)).map((event) => event.event),
        ['mfa_totp_enrolment_started'],
      )
    })

    test('a wrong code leaves the enrolment pending (422) and logins single-factor; the right one activates it', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = (await start(user.headers)).json<{ secret: string }>()
      const wrong = await confirm(user.headers, { code: wrongCodeAt(secret, stepOf(clock)) })
      const problem = assertProblem(wrong, 422)
      assert.equal(problem.detail, 'The code is not the current one of this enrolment.')
      assert.deepEqual(problem.errors, [
        { in: 'body', field: 'code', message: 'is not the current code of the authenticator app' },
      ])
      assert.equal((await factorRow(user.id))?.confirmed_at, null)
      assert.equal((await status(user.headers)).totp, 'pending')
      const right = await confirm(user.headers, { code: codeAt(secret, stepOf(clock)) })
      assert.equal(right.statusCode, 200, right.body)
      assert.equal(right.headers['cache-control'], 'no-store')
      const codes = right.json<{ recovery_codes: string[] }>().recovery_codes
      assert.equal(codes.length, 10)
      assert.equal(new Set(codes).size, 10)
      for (const code of codes) assert.match(code, /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/)
      const stored = await ctx.app.db
        .selectFrom('recovery_codes')
        .select('code_hash')
        .where('user_id', '=', user.id)
        .execute()
      assert.equal(stored.length, 10)
      for (const { code_hash } of stored) assert.ok(!codes.includes(code_hash), 'stored as hashes only')
      assert.deepEqual(await status(user.headers), {
        factors: ['totp', 'recovery_code'],
        totp: 'active',
        passkeys: 0,
        recovery_codes_left: 10,
        enrolment_required: false,
      })
      const events = (await eventsOf(ctx.app, user.id)).map((event) => [
        event.event,
        event.details === null ? null : (JSON.parse(event.details) as unknown),
      ])
      assert.deepEqual(events, [
        ['mfa_totp_enrolment_started', null],
        ['mfa_code_failed', { factor: 'totp', during: 'enrolment' }],
        ['mfa_totp_enabled', null],
      ])
    })

    test('the secret is never shown again: status and a second start while active (409) do not carry it', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      const again = await start(user.headers)
      assert.equal(assertProblem(again, 409).detail, TOTP_ACTIVE)
      assert.ok(!again.body.includes(secret))
      const rowBefore = await factorRow(user.id)
      assert.ok(!JSON.stringify(await status(user.headers)).includes(secret))
      assert.deepEqual(await factorRow(user.id), rowBefore, 'the active factor is untouched')
    })

    test('starting again replaces a pending enrolment: a code of the old secret no longer confirms', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const first = (await start(user.headers)).json<{ secret: string }>().secret
      const second = (await start(user.headers)).json<{ secret: string }>().secret
      assert.notEqual(first, second)
      const old = await confirm(user.headers, { code: codeAt(first, stepOf(clock)) })
      assertProblem(old, 422)
      assert.equal((await factorRow(user.id))?.confirmed_at, null)
      assert.equal((await confirm(user.headers, { code: codeAt(second, stepOf(clock)) })).statusCode, 200)
    })

    test('confirming with no enrolment, or once active, is 409 and changes nothing', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      assert.equal(
        assertProblem(await confirm(user.headers, { code: '123456' }), 409).detail,
        'There is no TOTP enrolment to confirm: start one with POST /mfa/totp.',
      )
      assert.equal(await factorRow(user.id), undefined)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      clock.advance(30_000)
      const before = await factorRow(user.id)
      assert.equal(
        assertProblem(await confirm(user.headers, { code: codeAt(secret, stepOf(clock)) }), 409).detail,
        TOTP_ACTIVE,
      )
      assert.deepEqual(await factorRow(user.id), before)
    })

    test('bad input to confirm is 422 naming the field, and the enrolment stays pending', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      await start(user.headers)
      const cases: [unknown, string][] = [
        [{}, 'code'],
        [{ code: '12345' }, 'code'],
        [{ code: '1234567' }, 'code'],
        [{ code: 'abcdef' }, 'code'],
        [{ code: 123456 }, 'code'],
        [{ code: '123456', extra: 1 }, 'extra'],
      ]
      for (const [payload, field] of cases) {
        const problem = assertProblem(await confirm(user.headers, payload), 422)
        assert.deepEqual(
          problem.errors?.map((issue) => issue.field),
          [field],
          JSON.stringify(payload),
        )
      }
      assert.equal((await factorRow(user.id))?.confirmed_at, null)
    })

    test('every /mfa route needs an access token', async () => {
      for (const [method, url] of [
        ['GET', '/mfa'],
        ['POST', '/mfa/totp'],
        ['POST', '/mfa/totp/confirm'],
        ['DELETE', '/mfa/totp'],
        ['POST', '/mfa/recovery-codes'],
      ] as const) {
        const response = await ctx.app.inject({ method, url, payload: {} })
        assertProblem(response, 401)
        assert.match(String(response.headers['www-authenticate']), /^Bearer/)
      }
    })
  },
  { build: { clock } },
)
