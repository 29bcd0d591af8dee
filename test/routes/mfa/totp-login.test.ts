import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import {
  amrOf,
  challenge,
  codeAt,
  enrolTotp,
  eventsOf,
  loginRequest,
  mfaLogin,
  STEP_MS,
  stepOf,
  userWithToken,
  wrongCodeAt,
  type TestUser,
} from './support.js'
import { mfaTokenRows } from '../passkeys/support.js'

const clock = new TestClock()

describeEachEngine(
  'login with TOTP as second factor',
  (ctx) => {
    /** An enrolled user, the clock then moved `steps` steps past the confirming code's step. */
    async function enrolled(steps = 3) {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret, recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      clock.advance(steps * STEP_MS)
      return { user, secret, recoveryCodes }
    }

    async function loginWithCode(user: TestUser, code: string) {
      const { mfa_token } = await challenge(ctx.app, user)
      return mfaLogin(ctx.app, { mfa_token, code })
    }

    test('a login without a second factor is unchanged: 200, tokens, amr ["pwd"]', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      assert.deepEqual(amrOf(user.token), ['pwd'])
      const login = await loginRequest(ctx.app, user.email, user.password)
      assert.equal(login.statusCode, 200, login.body)
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: login.json<{ refresh_token: string }>().refresh_token },
      })
      assert.deepEqual(amrOf(refreshed.json<{ access_token: string }>().access_token), ['pwd'])
      const row = await ctx.app.db
        .selectFrom('sessions')
        .select('amr')
        .where('user_id', '=', user.id)
        .execute()
      assert.deepEqual(row, [{ amr: 'pwd' }, { amr: 'pwd' }])
    })

    test('the right password of an enrolled account: 403 mfa_required with a token and the factors, no session', async () => {
      const { user } = await enrolled()
      const sessionsBefore = await ctx.app.repos.sessions.activeIds(user.id)
      const response = await loginRequest(ctx.app, user.email, user.password)
      const body = assertProblem(response, 403) as unknown as Record<string, unknown>
      assert.equal(body.error, 'mfa_required')
      assert.match(String(body.mfa_token), /^[A-Za-z0-9_-]{43}$/)
      assert.deepEqual(body.factors, ['totp', 'recovery_code'])
      assert.equal(body.expires_in, 300)
      assert.equal(body.access_token, undefined)
      assert.equal(response.headers['cache-control'], 'no-store')
      assert.deepEqual(await ctx.app.repos.sessions.activeIds(user.id), sessionsBefore, 'no new session')
      // Stored as a hash only.
      const rows = await ctx.app.db
        .selectFrom('mfa_tokens')
        .selectAll()
        .where('user_id', '=', user.id)
        .execute()
      assert.equal(rows.length, 1)
      assert.notEqual(rows[0]!.token_hash, body.mfa_token)
      assert.ok(!JSON.stringify(rows).includes(String(body.mfa_token)))
      assert.equal(
        body.detail,
        'The password is right; this account also needs a second factor: send the mfa_token with a code to POST /login/mfa.',
      )
      const [issued] = (await eventsOf(ctx.app, user.id)).slice(-1)
      assert.deepEqual(
        [issued!.event, issued!.outcome, JSON.parse(issued!.details!) as unknown],
        ['mfa_challenge_issued', 'success', { factors: 'totp recovery_code' }],
      )
    })

    test('a wrong password and an unknown user stay the same 401 for an enrolled account', async () => {
      const { user } = await enrolled()
      const wrong = await loginRequest(ctx.app, user.email, 'not the password at all')
      const unknown = await loginRequest(ctx.app, `nobody-${user.email}`, 'not the password at all')
      assert.deepEqual(assertProblem(wrong, 401), assertProblem(unknown, 401))
      assert.equal(wrong.json<Record<string, unknown>>().mfa_token, undefined)
    })

    test('the current code logs in: the token pair, amr pwd+otp+mfa, kept after refresh', async () => {
      const { user, secret } = await enrolled()
      const response = await loginWithCode(user, codeAt(secret, stepOf(clock)))
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const pair = response.json<{ access_token: string; refresh_token: string; token_type: string }>()
      assert.equal(pair.token_type, 'bearer')
      assert.deepEqual(amrOf(pair.access_token), ['pwd', 'otp', 'mfa'])
      const me = await ctx.app.inject({
        method: 'GET',
        url: '/current-user',
        headers: { authorization: `Bearer ${pair.access_token}` },
      })
      assert.equal(me.json<{ id: number }>().id, user.id)
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: pair.refresh_token },
      })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
      assert.deepEqual(amrOf(refreshed.json<{ access_token: string }>().access_token), ['pwd', 'otp', 'mfa'])
      const events = (await eventsOf(ctx.app, user.id)).map((row) => row.event)
      assert.deepEqual(events.slice(-2), ['mfa_challenge_issued', 'mfa_login_succeeded'])
    })

    test('a login with the second factor opens the re-authentication window of its session; a password login does not', async () => {
      const { user, secret } = await enrolled()
      const response = await loginWithCode(user, codeAt(secret, stepOf(clock)))
      assert.equal(response.statusCode, 200, response.body)
      const { access_token } = response.json<{ access_token: string }>()
      const rows = await ctx.app.db
        .selectFrom('sessions')
        .select(['amr', 'factor_verified_at'])
        .where('user_id', '=', user.id)
        .orderBy('created_at')
        .execute()
      // The enrolling session (a password login) proved no factor at its login; this one did, now.
      assert.deepEqual(
        rows.map((row) => [row.amr, row.factor_verified_at?.getTime() ?? null]),
        [
          ['pwd', null],
          ['pwd otp mfa', clock.now()],
        ],
      )
      const regenerate = (authorization: string) =>
        ctx.app.inject({
          method: 'POST',
          url: '/mfa/recovery-codes',
          headers: { authorization },
          payload: {},
        })
      assert.equal((await regenerate(`Bearer ${access_token}`)).statusCode, 200, 'no password needed')
      assertProblem(await regenerate(`Bearer ${user.token}`), 403)
    })

    test('the code of the previous step and of the next step are accepted (one step of clock drift)', async () => {
      const { user, secret } = await enrolled(5)
      const previous = await loginWithCode(user, codeAt(secret, stepOf(clock) - 1))
      assert.equal(previous.statusCode, 200, previous.body)
      const next = await loginWithCode(user, codeAt(secret, stepOf(clock) + 1))
      assert.equal(next.statusCode, 200, next.body)
    })

    test('codes two steps off either way are refused', async () => {
      const { user, secret } = await enrolled(5)
      for (const delta of [-2, 2]) {
        const response = await loginWithCode(user, codeAt(secret, stepOf(clock) + delta))
        assertProblem(response, 401)
      }
    })

    test('a code works once: the same step again is 401, and the mfa_token still works with a new code', async () => {
      const { user, secret } = await enrolled()
      const code = codeAt(secret, stepOf(clock))
      assert.equal((await loginWithCode(user, code)).statusCode, 200)
      const { mfa_token } = await challenge(ctx.app, user)
      const replay = await mfaLogin(ctx.app, { mfa_token, code })
      const problem = assertProblem(replay, 401)
      assert.match(problem.detail, /already used/)
      assert.equal(replay.headers['www-authenticate'], 'Bearer realm="api"')
      clock.advance(STEP_MS)
      const fresh = await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) })
      assert.equal(fresh.statusCode, 200, fresh.body)
      const failed = (await eventsOf(ctx.app, user.id)).filter((row) => row.event === 'mfa_code_failed')
      assert.equal(failed.length, 1)
    })

    test('after a later step was accepted, an earlier one (still in the window) is refused', async () => {
      const { user, secret } = await enrolled()
      const now = stepOf(clock)
      assert.equal((await loginWithCode(user, codeAt(secret, now + 1))).statusCode, 200)
      assertProblem(await loginWithCode(user, codeAt(secret, now)), 401)
      assertProblem(await loginWithCode(user, codeAt(secret, now - 1)), 401)
    })

    test('the code that confirmed the enrolment cannot log in', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      assertProblem(await loginWithCode(user, codeAt(secret, stepOf(clock))), 401)
    })

    test('a wrong code is 401, counted as a failed attempt, and starts no session', async () => {
      const { user, secret } = await enrolled()
      const before = await ctx.app.repos.sessions.activeIds(user.id)
      assertProblem(await loginWithCode(user, wrongCodeAt(secret, stepOf(clock))), 401)
      assert.deepEqual(await ctx.app.repos.sessions.activeIds(user.id), before)
      const failed = (await eventsOf(ctx.app, user.id)).filter((row) => row.event === 'mfa_code_failed')
      assert.deepEqual(
        failed.map((row) => [row.outcome, JSON.parse(row.details!) as unknown]),
        [['failure', { factor: 'totp' }]],
      )
    })

    test('a stored secret that no longer decrypts is a server fault (500), not a wrong code: nothing is spent or counted', async () => {
      const { user, secret } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user)
      const stored = await ctx.app.db
        .selectFrom('totp_factors')
        .select('secret_encrypted')
        .where('user_id', '=', user.id)
        .executeTakeFirstOrThrow()
      // Another key's ciphertext, as after DATA_ENCRYPTION_KEY was replaced without its old value.
      const damaged =
        stored.secret_encrypted.slice(0, -4) + (stored.secret_encrypted.endsWith('AAAA') ? 'BBBB' : 'AAAA')
      await ctx.app.db
        .updateTable('totp_factors')
        .set({ secret_encrypted: damaged })
        .where('user_id', '=', user.id)
        .execute()
      const response = await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) })
      assertProblem(response, 500)
      assert.equal(
        (await eventsOf(ctx.app, user.id)).some((row) => row.event === 'mfa_code_failed'),
        false,
      )
      assert.deepEqual(
        (await mfaTokenRows(ctx.app, user.id)).map((row) => row.used_at),
        [null],
      )
    })

    test('disabling TOTP (with the password) makes the login single-factor again', async () => {
      const { user } = await enrolled()
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: '/mfa/totp',
        headers: user.headers,
        payload: { password: user.password },
      })
      assert.equal(response.statusCode, 204, response.body)
      const login = await loginRequest(ctx.app, user.email, user.password)
      assert.equal(login.statusCode, 200, login.body)
      assert.deepEqual(amrOf(login.json<{ access_token: string }>().access_token), ['pwd'])
      assert.equal(
        (
          await ctx.app.db
            .selectFrom('recovery_codes')
            .select('user_id')
            .where('user_id', '=', user.id)
            .execute()
        ).length,
        0,
      )
      assert.deepEqual((await eventsOf(ctx.app, user.id)).map((row) => row.event).slice(-1), [
        'mfa_totp_disabled',
      ])
    })
  },
  { build: { clock } },
)
