/**
 * With REQUIRE_EMAIL_VERIFICATION, the right password of an unverified account is a 403 that says
 * why, starts no session, and is recorded as a failed login with its reason.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine, register, uniqueUser } from '../../support/app.js'

describeEachEngine(
  'logging in before the email is verified',
  (ctx) => {
    test('403 naming the unverified address, no session, and a login_failed row saying why', async () => {
      const account = await register(ctx.app, uniqueUser())
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username: account.email, password: account.password },
      })
      assert.match(assertProblem(response, 403).detail, /email address of this account is not verified/)
      assert.deepEqual(await ctx.app.repos.sessions.activeIds(account.id), [])
      const rows = await ctx.app.db
        .selectFrom('audit_events')
        .select(['event', 'outcome', 'user_id', 'details'])
        .where('user_id', '=', account.id)
        .where('event', '=', 'login_failed')
        .execute()
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.outcome, 'failure')
      assert.equal(JSON.parse(String(rows[0]!.details)).reason, 'email_not_verified')
    })
  },
  { env: { REQUIRE_EMAIL_VERIFICATION: 'true' } },
)
