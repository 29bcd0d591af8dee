import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import { TestClock } from '../../support/clock.js'
import {
  challenge,
  codeAt,
  enrolTotp,
  mfaLogin,
  STEP_MS,
  stepOf,
  userWithToken,
  wrongCodeAt,
} from './support.js'

const clock = new TestClock()
const PER_ACCOUNT = 4

describeEachEngine(
  'second-factor guesses against the attempt limit',
  (ctx) => {
    test('wrong codes at /login/mfa reach the account limit: then 429 with Retry-After, even for the right code', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      clock.advance(3 * STEP_MS)
      // The enrolment's confirmation counted one attempt; then two mfa_tokens with wrong guesses:
      // the limit is the account's, not the token's.
      let mfaToken = ''
      for (let guess = 0; guess < PER_ACCOUNT - 1; guess++) {
        if (guess % 2 === 0) mfaToken = (await challenge(ctx.app, user)).mfa_token
        const wrong = { mfa_token: mfaToken, code: wrongCodeAt(secret, stepOf(clock)) }
        assertProblem(await mfaLogin(ctx.app, wrong), 401)
      }
      const mfa_token = mfaToken
      const sessions = (await ctx.app.repos.sessions.activeIds(user.id)).length
      const refused = await mfaLogin(ctx.app, { mfa_token, code: codeAt(secret, stepOf(clock)) })
      const problem = assertProblem(refused, 429)
      assert.ok(Number(refused.headers['retry-after']) >= 1, String(refused.headers['retry-after']))
      assert.equal(
        problem.detail,
        `Too many second-factor attempts for this account; try again in ${refused.headers['retry-after']} seconds.`,
      )
      assert.equal((await ctx.app.repos.sessions.activeIds(user.id)).length, sessions)
      // The refused right code was not spent: once the window has passed it logs in.
      clock.advance(15 * 60_000)
      const { mfa_token: later } = await challenge(ctx.app, user)
      const code = codeAt(secret, stepOf(clock))
      assert.equal((await mfaLogin(ctx.app, { mfa_token: later, code })).statusCode, 200)
    })

    test('wrong codes confirming an enrolment reach the same limit: 429, still pending', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const started = await ctx.app.inject({ method: 'POST', url: '/mfa/totp', headers: user.headers })
      const { secret } = started.json<{ secret: string }>()
      const confirm = (code: string) =>
        ctx.app.inject({ method: 'POST', url: '/mfa/totp/confirm', headers: user.headers, payload: { code } })
      for (let guess = 0; guess < PER_ACCOUNT; guess++)
        assertProblem(await confirm(wrongCodeAt(secret, stepOf(clock))), 422)
      const refused = await confirm(codeAt(secret, stepOf(clock)))
      assertProblem(refused, 429)
      assert.ok(refused.headers['retry-after'])
      const row = await ctx.app.db
        .selectFrom('totp_factors')
        .select('confirmed_at')
        .where('user_id', '=', user.id)
        .executeTakeFirst()
      assert.deepEqual(row, { confirmed_at: null })
    })

    test('password guesses through a stolen access token (recovery codes, disabling) reach the limit too', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      await enrolTotp(ctx.app, user, clock)
      const regenerate = (password: string) =>
        ctx.app.inject({
          method: 'POST',
          url: '/mfa/recovery-codes',
          headers: user.headers,
          payload: { password },
        })
      for (let guess = 0; guess < PER_ACCOUNT; guess++)
        assertProblem(await regenerate('a wrong password!'), 422)
      assert.match(
        assertProblem(await regenerate(user.password), 429).detail,
        /^Too many re-authentication attempts for this account; try again in \d+ seconds\.$/,
      )
      const disable = await ctx.app.inject({
        method: 'DELETE',
        url: '/mfa/totp',
        headers: user.headers,
        payload: { password: user.password },
      })
      assertProblem(disable, 429)
    })

    test('wrong codes at /mfa/reauthenticate count as second-factor guesses: the limit, then 429 for the right code too', async () => {
      clock.set(Date.now())
      const user = await userWithToken(ctx.app)
      const { secret } = await enrolTotp(ctx.app, user, clock)
      clock.advance(STEP_MS)
      const reauthenticate = (code: string) =>
        ctx.app.inject({
          method: 'POST',
          url: '/mfa/reauthenticate',
          headers: user.headers,
          payload: { code },
        })
      // The code that confirmed the enrolment was the first attempt.
      for (let guess = 1; guess < PER_ACCOUNT; guess++)
        assertProblem(await reauthenticate(wrongCodeAt(secret, stepOf(clock))), 422)
      const refused = assertProblem(await reauthenticate(codeAt(secret, stepOf(clock))), 429)
      assert.match(
        refused.detail,
        /^Too many second-factor attempts for this account; try again in \d+ seconds\.$/,
      )
    })
  },
  {
    build: { clock },
    env: {
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: String(PER_ACCOUNT),
      RATE_LIMIT_ATTEMPTS_PER_IP: '1000',
      RATE_LIMIT_PER_MINUTE: '100000',
    },
  },
)
