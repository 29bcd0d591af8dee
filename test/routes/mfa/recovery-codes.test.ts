import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import {
  amrOf,
  challenge,
  enrolTotp,
  eventsOf,
  mfaLogin,
  STEP_MS,
  userWithToken,
  type TestUser,
} from './support.js'

const clock = new TestClock()

describeEachEngine(
  'recovery codes',
  (ctx) => {
    async function enrolled() {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret, recoveryCodes } = await enrolTotp(ctx.app, user, clock)
      clock.advance(STEP_MS)
      return { user, secret, recoveryCodes }
    }

    async function loginWithRecoveryCode(user: TestUser, recoveryCode: string) {
      const { mfa_token } = await challenge(ctx.app, user)
      return mfaLogin(ctx.app, { mfa_token, recovery_code: recoveryCode })
    }

    const regenerate = (user: TestUser, payload: unknown) =>
      ctx.app.inject({
        method: 'POST',
        url: '/mfa/recovery-codes',
        headers: user.headers,
        payload: payload as object,
      })
    const unusedCodes = async (userId: number) => ctx.app.repos.recoveryCodes.countUnused(userId)

    test('each code logs in once, with amr pwd+mfa; typed in capitals without dashes it still works', async () => {
      const { user, recoveryCodes } = await enrolled()
      const [first, second] = recoveryCodes as [string, string]
      const response = await loginWithRecoveryCode(user, first)
      assert.equal(response.statusCode, 200, response.body)
      const pair = response.json<{ access_token: string; refresh_token: string }>()
      assert.deepEqual(amrOf(pair.access_token), ['pwd', 'mfa'])
      const refreshed = await ctx.app.inject({
        method: 'POST',
        url: '/token/refresh',
        payload: { refresh_token: pair.refresh_token },
      })
      assert.deepEqual(amrOf(refreshed.json<{ access_token: string }>().access_token), ['pwd', 'mfa'])
      assertProblem(await loginWithRecoveryCode(user, first), 401)
      const typed = await loginWithRecoveryCode(user, second.replaceAll('-', '').toUpperCase())
      assert.equal(typed.statusCode, 200, typed.body)
      assert.equal(await unusedCodes(user.id), 8)
      const used = (await eventsOf(ctx.app, user.id)).filter((row) => row.event === 'mfa_recovery_code_used')
      assert.deepEqual(
        used.map((row) => JSON.parse(row.details!) as unknown),
        [{ codes_left: 9 }, { codes_left: 8 }],
      )
    })

    test('one code sent twice at once (two logins): exactly one 200', async () => {
      const { user, recoveryCodes } = await enrolled()
      const [a, b] = await Promise.all([challenge(ctx.app, user), challenge(ctx.app, user)])
      const results = await Promise.all([
        mfaLogin(ctx.app, { mfa_token: a.mfa_token, recovery_code: recoveryCodes[0] }),
        mfaLogin(ctx.app, { mfa_token: b.mfa_token, recovery_code: recoveryCodes[0] }),
      ])
      assert.deepEqual(results.map((response) => response.statusCode).sort(), [200, 401])
      assert.equal(await unusedCodes(user.id), 9)
    })

    test('a code of another user, or not a code at all, is 401 and spends nothing', async () => {
      const { user } = await enrolled()
      const other = await enrolled()
      assertProblem(await loginWithRecoveryCode(user, other.recoveryCodes[0]!), 401)
      assertProblem(await loginWithRecoveryCode(user, 'zzzz-zzzz-zzzz-zzzu'), 401)
      assert.equal(await unusedCodes(user.id), 10)
      assert.equal(await unusedCodes(other.user.id), 10)
    })

    test('regenerating with the password: 10 new codes, no-store; every old code stops working', async () => {
      const { user, recoveryCodes } = await enrolled()
      assert.equal((await loginWithRecoveryCode(user, recoveryCodes[0]!)).statusCode, 200)
      // Even with every code spent: TOTP is the factor the codes stand in for.
      await ctx.app.db
        .updateTable('recovery_codes')
        .set({ used_at: new Date(clock.now()) })
        .where('user_id', '=', user.id)
        .where('used_at', 'is', null)
        .execute()
      assert.equal(await unusedCodes(user.id), 0)
      const response = await regenerate(user, { password: user.password })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.headers['cache-control'], 'no-store')
      const fresh = response.json<{ recovery_codes: string[] }>().recovery_codes
      assert.equal(fresh.length, 10)
      assert.equal(fresh.filter((code) => recoveryCodes.includes(code)).length, 0)
      assert.equal(await unusedCodes(user.id), 10)
      assertProblem(await loginWithRecoveryCode(user, recoveryCodes[1]!), 401)
      assert.equal((await loginWithRecoveryCode(user, fresh[0]!)).statusCode, 200)
      const events = (await eventsOf(ctx.app, user.id)).map((row) => row.event)
      assert.ok(events.includes('mfa_recovery_codes_regenerated'))
    })

    test('regenerating with a wrong password is 422 on the password and keeps the old set', async () => {
      const { user, recoveryCodes } = await enrolled()
      const response = await regenerate(user, { password: 'not my password at all' })
      const problem = assertProblem(response, 422)
      assert.deepEqual(
        problem.errors?.map((issue) => issue.field),
        ['password'],
      )
      assert.equal((await loginWithRecoveryCode(user, recoveryCodes[0]!)).statusCode, 200)
      const failed = (await eventsOf(ctx.app, user.id)).filter(
        (row) => row.event === 'mfa_reauthentication_failed',
      )
      assert.equal(failed.length, 1)
    })

    test('regenerating without a second factor is 409; bad bodies are 422; nothing is stored', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      for (const payload of [{ password: user.password }, {}])
        assert.equal(
          assertProblem(await regenerate(user, payload), 409).detail,
          'Recovery codes stand in for a second factor, and this account has none (TOTP or a passkey).',
        )
      for (const payload of [{ password: '' }, { password: user.password, extra: 1 }, { password: 7 }])
        assertProblem(await regenerate(user, payload), 422)
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
    })

    test('disabling needs the password: wrong (422) or missing after a password login (403) leaves TOTP active; without TOTP, 404', async () => {
      const { user } = await enrolled()
      const disable = (payload: unknown) =>
        ctx.app.inject({
          method: 'DELETE',
          url: '/mfa/totp',
          headers: user.headers,
          payload: payload as object,
        })
      const wrong = assertProblem(await disable({ password: 'not my password at all' }), 422)
      assert.deepEqual(
        wrong.errors?.map((issue) => issue.field),
        ['password'],
      )
      const missing = assertProblem(await disable({}), 403)
      assert.equal(missing.error, 'reauthentication_required')
      assert.equal((await challenge(ctx.app, user)).error, 'mfa_required')
      assert.equal(await unusedCodes(user.id), 10)
      assert.equal((await disable({ password: user.password })).statusCode, 204)
      // Without TOTP, 404 comes first: no password is asked, nor checked.
      for (const payload of [{ password: user.password }, {}, { password: 'not my password at all' }])
        assert.equal(
          assertProblem(await disable(payload), 404).detail,
          'There is no TOTP factor on this account.',
        )
    })
  },
  { build: { clock } },
)
