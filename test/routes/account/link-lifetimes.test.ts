/**
 * The emailed links: each works only for its own purpose, and exactly as long as it should (on a
 * clock the test moves: a link is tried in the last second of its life and at its end).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  EMAIL_VERIFICATION_LIFETIME_HOURS,
  PASSWORD_RESET_LIFETIME_MINUTES,
} from '../../../src/services/account-emails.js'
import { assertProblem, describeEachEngine, register } from '../../support/app.js'
import { HOUR, MINUTE, SECOND, TestClock } from '../../support/clock.js'
import {
  MAIL_ENV,
  currentUser,
  loginPair,
  resetPassword,
  resetTokenFor,
  tokenPair,
  verifyEmail,
  waitForToken,
} from './support.js'

const clock = new TestClock()
/** Whole seconds: every engine stores the expiry to the second at least. */
const startClock = () => {
  const start = Math.floor(Date.now() / SECOND) * SECOND
  clock.set(start)
  return start
}

const RESET_LIFETIME = PASSWORD_RESET_LIFETIME_MINUTES * MINUTE
const VERIFICATION_LIFETIME = EMAIL_VERIFICATION_LIFETIME_HOURS * HOUR

describeEachEngine(
  'emailed links: their purpose and their lifetime',
  (ctx) => {
    const emailVerified = async (email: string, password: string) => {
      const { access_token } = await tokenPair(ctx.app, email, password)
      return (await currentUser(ctx.app, access_token)).json<{ email_verified: boolean }>().email_verified
    }

    test('an email verification token is not a password reset token: 400, and the password stays', async () => {
      startClock()
      const user = await register(ctx.app)
      const verification = await waitForToken(user.email, 'verify-email')
      const refused = await resetPassword(ctx.app, verification, 'a password set by the wrong link')
      assert.match(assertProblem(refused, 400).detail, /password reset link is not valid/)
      assert.equal((await loginPair(ctx.app, user.email, 'a password set by the wrong link')).statusCode, 401)
      assert.equal((await loginPair(ctx.app, user.email, user.password)).statusCode, 200)
      // Not spent by the refusal: it still verifies the address it was sent to.
      assert.equal((await verifyEmail(ctx.app, verification)).statusCode, 204)
      assert.equal(await emailVerified(user.email, user.password), true)
    })

    test('a password reset token is not an email verification token: 400, and the email stays unverified', async () => {
      startClock()
      const user = await register(ctx.app)
      const reset = await resetTokenFor(ctx.app, user.email)
      const refused = await verifyEmail(ctx.app, reset)
      assert.match(assertProblem(refused, 400).detail, /email verification link is not valid/)
      assert.equal(await emailVerified(user.email, user.password), false)
      // Not spent by the refusal: it still resets the password.
      assert.equal((await resetPassword(ctx.app, reset, 'the password from the reset link')).statusCode, 204)
      assert.equal((await loginPair(ctx.app, user.email, 'the password from the reset link')).statusCode, 200)
    })

    test(`a reset link works for ${PASSWORD_RESET_LIFETIME_MINUTES} minutes to the second, and not at their end`, async () => {
      const start = startClock()
      const [early, late] = [await register(ctx.app), await register(ctx.app)]
      const [earlyToken, lateToken] = [
        await resetTokenFor(ctx.app, early.email),
        await resetTokenFor(ctx.app, late.email),
      ]
      clock.set(start + RESET_LIFETIME - SECOND)
      assert.equal((await resetPassword(ctx.app, earlyToken, 'reset in its last second')).statusCode, 204)
      clock.set(start + RESET_LIFETIME)
      assertProblem(await resetPassword(ctx.app, lateToken, 'reset when it has ended'), 400)
      assert.equal((await loginPair(ctx.app, late.email, late.password)).statusCode, 200)
    })

    test(`a verification link works for ${EMAIL_VERIFICATION_LIFETIME_HOURS} hours to the second, and not at their end`, async () => {
      const start = startClock()
      const [early, late] = [await register(ctx.app), await register(ctx.app)]
      const earlyToken = await waitForToken(early.email, 'verify-email')
      const lateToken = await waitForToken(late.email, 'verify-email')
      clock.set(start + VERIFICATION_LIFETIME - SECOND)
      assert.equal((await verifyEmail(ctx.app, earlyToken)).statusCode, 204)
      clock.set(start + VERIFICATION_LIFETIME)
      assertProblem(await verifyEmail(ctx.app, lateToken), 400)
      clock.set(start)
      assert.equal(await emailVerified(early.email, early.password), true)
      assert.equal(await emailVerified(late.email, late.password), false)
    })
  },
  { env: MAIL_ENV, build: { clock } },
)
