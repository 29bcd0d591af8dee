/** Without Redis, the revocation list alone refuses an ended session's tokens on the very next request. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildApp } from '../../../src/app.js'
import { assertProblem, bearer, describeEachEngine, testConfig } from '../../support/app.js'
import {
  sidOf,
  loginPair,
  userWithSession,
  logout,
  assertAccessWorks,
  assertAccessRefused,
} from '../../routes/sessions/support.js'

// ------------------------------------------------------------------ revocation store, one instance

describeEachEngine('revocation without Redis (the list alone)', (ctx) => {
  test('one instance: a logout is refused on the next request, other sessions are not', async () => {
    assert.equal(ctx.app.revocations.sharedThroughRedis, false)
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account)
    assert.equal((await logout(ctx.app, session.access_token)).statusCode, 204)
    assert.equal(await ctx.app.revocations.isRevoked(sidOf(session.access_token)), true)
    assert.equal(await ctx.app.revocations.isRevoked(sidOf(other.access_token)), false)
    await assertAccessRefused(ctx.app, session.access_token)
    await assertAccessWorks(ctx.app, other.access_token, account.id)
  })

  test('a restarted instance still refuses access tokens of sessions ended before the restart', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account)
    assert.equal((await logout(ctx.app, session.access_token)).statusCode, 204)
    // A new process on the same database (a restart or a deploy): its memory starts empty.
    const restarted = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl }), { logger: false })
    try {
      await restarted.ready()
      await assertAccessRefused(restarted, session.access_token, 'logged out before the restart')
      await assertAccessWorks(restarted, other.access_token, account.id, 'other session')
    } finally {
      await restarted.close()
    }
  })
  test('a restarted instance still refuses access tokens of a user deleted before the restart', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${account.id}`,
      headers: bearer(session.access_token),
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    // The session row outlives the user (user_id null), so the new process learns it was revoked.
    const row = await ctx.app.db
      .selectFrom('sessions')
      .select(['user_id', 'revoked_reason'])
      .where('id', '=', sidOf(session.access_token))
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { user_id: null, revoked_reason: 'user_deleted' })
    const restarted = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl }), { logger: false })
    try {
      await restarted.ready()
      // A route that does not read the account: only the revocation set can refuse the token.
      assertProblem(
        await restarted.inject({ method: 'GET', url: '/product/', headers: bearer(session.access_token) }),
        401,
      )
    } finally {
      await restarted.close()
    }
  })
})
