/**
 * The account links' answers word for word and the rows they leave: a wrong current password, a
 * verified address in the audit trail, a resend for an account that is gone, and an unknown reset
 * token refused before any password is hashed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { passwordHashing } from '../../../src/auth/passwords.js'
import { assertProblem, bearer, describeEachEngine, register, uniqueUser } from '../../support/app.js'
import { MAIL_ENV, resetPassword, tokenPair, verifyEmail, waitForToken } from './support.js'

describeEachEngine(
  'account answers and records',
  (ctx) => {
    test('a wrong current password: 422 saying so, naming current_password in the body', async () => {
      const account = await register(ctx.app, uniqueUser())
      const { access_token } = await tokenPair(ctx.app, account.email, account.password)
      const response = await ctx.app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: bearer(access_token),
        payload: { current_password: 'not the password at all', new_password: 'a new long passphrase' },
      })
      const problem = assertProblem(response, 422)
      assert.equal(problem.detail, 'The current password is not right.')
      assert.deepEqual(problem.errors, [
        { in: 'body', field: 'current_password', message: 'is not your current password' },
      ])
    })

    test('verifying an address leaves one email_verified success row for that user', async () => {
      const account = await register(ctx.app, uniqueUser())
      const token = await waitForToken(account.email, 'verify-email')
      assert.equal((await verifyEmail(ctx.app, token)).statusCode, 204)
      const rows = await ctx.app.db
        .selectFrom('audit_events')
        .select(['event', 'outcome'])
        .where('user_id', '=', account.id)
        .where('event', '=', 'email_verified')
        .execute()
      assert.deepEqual(rows, [{ event: 'email_verified', outcome: 'success' }])
    })

    test('asking for a new verification link for a deactivated account: 401, the account is gone', async () => {
      const account = await register(ctx.app, uniqueUser())
      const { access_token } = await tokenPair(ctx.app, account.email, account.password)
      await ctx.app.repos.users.update(account.id, { is_active: false })
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/verify-email/resend',
        headers: bearer(access_token),
      })
      assertProblem(response, 401)
    })

    test('an unknown reset token is refused before any password is hashed', async () => {
      const before = passwordHashing().hash
      const response = await resetPassword(ctx.app, 'A'.repeat(43), 'a new long passphrase')
      assertProblem(response, 400)
      assert.equal(passwordHashing().hash, before)
    })
  },
  { env: MAIL_ENV },
)
