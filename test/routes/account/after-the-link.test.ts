/**
 * What a reset or verification link does to the account after it was mailed: a reset through a link
 * mailed to an address the account no longer has sets the password but proves nothing about the new
 * address; the sessions a reset ends are recorded as ended by the reset; a verification link that
 * is not valid says so word for word.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, bearer, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { MAIL_ENV, resetPassword, resetTokenFor, tokenPair, verifyEmail } from './support.js'

const INVALID_VERIFICATION_LINK =
  'This email verification link is not valid: it may have expired, been used already, or be for an ' +
  'email address the account no longer has. Log in and ask for a new one at POST /verify-email/resend.'

describeEachEngine(
  'after the link was mailed',
  (ctx) => {
    const emailVerified = async (userId: number) =>
      Boolean(
        (
          await ctx.app.db
            .selectFrom('users')
            .select('email_verified')
            .where('id', '=', userId)
            .executeTakeFirstOrThrow()
        ).email_verified,
      )

    test('a reset through a link mailed to the current address also verifies that address', async () => {
      const account = await register(ctx.app, uniqueUser())
      assert.equal(await emailVerified(account.id), false)
      const token = await resetTokenFor(ctx.app, account.email)
      assert.equal((await resetPassword(ctx.app, token, 'a new long passphrase')).statusCode, 204)
      assert.equal(await emailVerified(account.id), true)
    })

    test('a reset through a link mailed to a former address sets the password, and leaves the new address unverified', async () => {
      const account = await register(ctx.app, uniqueUser())
      const token = await resetTokenFor(ctx.app, account.email)
      const { access_token } = await tokenPair(ctx.app, account.email, account.password)
      const newEmail = uniqueUser().email
      const change = await ctx.app.inject({
        method: 'PATCH',
        url: `/users/${account.id}`,
        headers: bearer(access_token),
        payload: { email: newEmail, current_password: account.password },
      })
      assert.equal(change.statusCode, 200, change.body)

      assert.equal((await resetPassword(ctx.app, token, 'a new long passphrase')).statusCode, 204)
      assert.equal(await emailVerified(account.id), false)
      // The reset itself happened: the new password logs in at the new address.
      await tokenPair(ctx.app, newEmail, 'a new long passphrase')
    })

    test('the sessions a reset ends are recorded as ended by a password reset', async () => {
      const account = await register(ctx.app, uniqueUser())
      await tokenPair(ctx.app, account.email, account.password)
      await tokenPair(ctx.app, account.name, account.password)
      const token = await resetTokenFor(ctx.app, account.email)
      assert.equal((await resetPassword(ctx.app, token, 'a new long passphrase')).statusCode, 204)
      const sessions = await ctx.app.db
        .selectFrom('sessions')
        .select(['revoked_reason'])
        .where('user_id', '=', account.id)
        .execute()
      assert.deepEqual(
        sessions.map((session) => session.revoked_reason),
        ['password_reset', 'password_reset'],
      )
    })

    test('a verification link that is not valid: 400 saying what may be wrong and where to ask again', async () => {
      const response = await verifyEmail(ctx.app, 'A'.repeat(43))
      assert.equal(assertProblem(response, 400).detail, INVALID_VERIFICATION_LINK)
    })
  },
  { env: MAIL_ENV },
)
