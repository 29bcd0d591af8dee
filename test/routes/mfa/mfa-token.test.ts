import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { MINUTE, TestClock } from '../../support/clock.js'
import {
  challenge,
  codeAt,
  enrolTotp,
  eventsOf,
  mfaLogin,
  STEP_MS,
  stepOf,
  userWithToken,
} from './support.js'

const clock = new TestClock()
const INVALID = 'The mfa_token is invalid or expired: log in again with POST /login.'

describeEachEngine(
  'the mfa_token of a login that owes a second factor',
  (ctx) => {
    async function enrolled() {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret, recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      clock.advance(3 * STEP_MS)
      return { user, secret, recoveryCodes }
    }

    /** Refused as an unusable mfa_token, and the code it was sent with is still unused. */
    async function assertRefusedToken(response: Awaited<ReturnType<typeof mfaLogin>>) {
      const problem = assertProblem(response, 401)
      assert.equal(problem.detail, INVALID)
      assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"')
      assert.equal(response.json<Record<string, unknown>>().access_token, undefined)
    }

    const sessionCount = async (userId: number) => (await ctx.app.repos.sessions.activeIds(userId)).length

    test('valid for 5 minutes: a millisecond before, it works; at 5 minutes, it is refused', async () => {
      const { user, secret } = await enrolled()
      const first = await challenge(ctx.app, user)
      clock.advance(5 * MINUTE - 1)
      const inTime = await mfaLogin(ctx.app, {
        mfa_token: first.mfa_token,
        code: codeAt(secret, stepOf(clock)),
      })
      assert.equal(inTime.statusCode, 200, inTime.body)
      clock.advance(STEP_MS)
      const second = await challenge(ctx.app, user)
      clock.advance(5 * MINUTE)
      const sessions = await sessionCount(user.id)
      await assertRefusedToken(
        await mfaLogin(ctx.app, { mfa_token: second.mfa_token, code: codeAt(secret, stepOf(clock)) }),
      )
      assert.equal(await sessionCount(user.id), sessions)
      // The code was not spent by the refusal: a fresh login takes it.
      const fresh = await challenge(ctx.app, user)
      const late = await mfaLogin(ctx.app, {
        mfa_token: fresh.mfa_token,
        code: codeAt(secret, stepOf(clock)),
      })
      assert.equal(late.statusCode, 200, late.body)
    })

    test('single-use: the same mfa_token after a successful login is refused', async () => {
      const { user, secret } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user)
      assert.equal(
        (await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) })).statusCode,
        200,
      )
      clock.advance(STEP_MS)
      await assertRefusedToken(await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) }))
    })

    test('bound to its client: another User-Agent is refused, the token then still works for its own client', async () => {
      const { user, secret } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user, 'browser-A')
      const code = codeAt(secret, stepOf(clock))
      await assertRefusedToken(await mfaLogin(ctx.app, { mfa_token, code }, 'browser-B'))
      const withoutAgent = await ctx.app.inject({
        method: 'POST',
        url: '/login/mfa',
        payload: { mfa_token, code },
      })
      await assertRefusedToken(withoutAgent)
      const own = await mfaLogin(ctx.app, { mfa_token, code }, 'browser-A')
      assert.equal(own.statusCode, 200, own.body)
      const refused = (await eventsOf(ctx.app, user.id)).filter((row) => row.event === 'mfa_token_refused')
      assert.deepEqual(
        refused.map((row) => JSON.parse(row.details!) as unknown),
        [{ reason: 'binding' }, { reason: 'binding' }],
      )
    })

    test('bound to the password: after a password change the token is refused', async () => {
      const { user, secret } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user)
      const changed = await ctx.app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: user.headers,
        payload: { current_password: user.password, new_password: `${user.password} changed` },
      })
      assert.equal(changed.statusCode, 204, changed.body)
      await assertRefusedToken(await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) }))
    })

    /** The newest mfa_token_refused audit row: whose it is and why. */
    async function lastRefusal() {
      const row = await ctx.app.db
        .selectFrom('audit_events')
        .select(['user_id', 'details'])
        .where('event', '=', 'mfa_token_refused')
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow()
      return { user_id: row.user_id, details: JSON.parse(row.details!) as unknown }
    }

    test('an unknown mfa_token is the same 401, audited as unknown and naming no account', async () => {
      await enrolled()
      await assertRefusedToken(await mfaLogin(ctx.app, { mfa_token: 'A'.repeat(43), code: '123456' }))
      assert.deepEqual(await lastRefusal(), { user_id: null, details: { reason: 'unknown_used_or_expired' } })
    })

    test('an account deactivated after its password was checked: the right code is the same 401, and no session starts', async () => {
      const { user, secret } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user)
      await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', user.id).execute()
      const sessions = await sessionCount(user.id)
      await assertRefusedToken(await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) }))
      assert.equal(await sessionCount(user.id), sessions)
      assert.equal(
        (await eventsOf(ctx.app, user.id)).some((row) => row.event === 'mfa_login_succeeded'),
        false,
      )
    })

    test('bad input is 422 naming the problem, and spends neither the token nor a code', async () => {
      const { user, secret, recoveryCodes } = await enrolled()
      const { mfa_token } = await challenge(ctx.app, user)
      const code = codeAt(secret, stepOf(clock))
      const bodies: unknown[] = [
        {},
        { mfa_token },
        { code },
        { mfa_token, code, recovery_code: recoveryCodes[0] },
        { mfa_token, code, extra: true },
        { mfa_token, code: '12345' },
        { mfa_token, code: 123456 },
        { mfa_token, recovery_code: 'short' },
        { mfa_token: 'not a token', code },
        { mfa_token: `${mfa_token}x`, code },
      ]
      for (const body of bodies) {
        const response = await mfaLogin(ctx.app, body as Record<string, unknown>)
        const problem = assertProblem(response, 422)
        assert.ok((problem.errors ?? []).length > 0, JSON.stringify(body))
      }
      const tokens = await ctx.app.db
        .selectFrom('mfa_tokens')
        .select('used_at')
        .where('user_id', '=', user.id)
        .execute()
      assert.deepEqual(tokens, [{ used_at: null }])
      const ok = await mfaLogin(ctx.app, { mfa_token, code })
      assert.equal(ok.statusCode, 200, ok.body)
    })

    test('one token sent twice at once with two recovery codes: one login, and only its code is spent', async () => {
      const { user, recoveryCodes } = await enrolled()
      for (let round = 0; round < 3; round++) {
        const { mfa_token } = await challenge(ctx.app, user)
        const [a, b] = [recoveryCodes[2 * round]!, recoveryCodes[2 * round + 1]!]
        const sessions = await sessionCount(user.id)
        const results = await Promise.all([
          mfaLogin(ctx.app, { mfa_token, recovery_code: a }),
          mfaLogin(ctx.app, { mfa_token, recovery_code: b }),
        ])
        assert.deepEqual(results.map((response) => response.statusCode).sort(), [200, 401], `round ${round}`)
        await assertRefusedToken(results.find((response) => response.statusCode === 401)!)
        assert.equal(await sessionCount(user.id), sessions + 1)
        // The loser's code was never checked: it still logs in.
        const loser = results[0]!.statusCode === 401 ? a : b
        const again = await mfaLogin(ctx.app, {
          mfa_token: (await challenge(ctx.app, user)).mfa_token,
          recovery_code: loser,
        })
        assert.equal(again.statusCode, 200, `round ${round}: the losing request burnt its code`)
      }
    })

    test('a token sent as a form body (not JSON) is 415', async () => {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/login/mfa',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'mfa_token=x&code=123456',
      })
      assertProblem(response, 415)
    })
  },
  { build: { clock } },
)
