/** A multi-row change that fails half-way leaves nothing half-done. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  registerAndLogin,
  type TestActor as Actor,
} from '../../support/app.js'
import { createProduct, rowOf } from './catalogue-support.js'

// ================================================================== 7. all or nothing

/** A table of the test's own whose rows keep a user from being deleted (a foreign key, no cascade). */
type BlockerTable = Record<'catalogue_blocker', { user_id: number }>

describeEachEngine('catalogue: a multi-row change that fails half-way leaves nothing half-done', (ctx) => {
  const blockers = () => ctx.app.db.withTables<BlockerTable>()

  before(async () => {
    await blockers()
      .schema.createTable('catalogue_blocker')
      .addColumn('user_id', 'integer', (col) => col.notNull())
      .addForeignKeyConstraint('catalogue_blocker_user_fk', ['user_id'], 'users', ['id'])
      .execute()
  })

  const activeSessions = async (userId: number) =>
    (
      await ctx.app.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute()
    ).length

  const userExists = async (userId: number) =>
    (await ctx.app.db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst()) !==
    undefined

  const me = (token: string) => ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })

  const deleteUser = (user: Actor) =>
    ctx.app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: user.headers })

  /**
   * A user whose deletion fails at its last step: the sessions are ended (in the transaction), then
   * deleting the user row breaks a foreign key.
   */
  async function blockedUser() {
    const user = await registerAndLogin(ctx.app)
    const otherToken = await login(ctx.app, user.email, user.password)
    const products = [await createProduct(ctx, user), await createProduct(ctx, user)]
    await blockers().insertInto('catalogue_blocker').values({ user_id: user.id }).execute()
    const unblock = () => blockers().deleteFrom('catalogue_blocker').where('user_id', '=', user.id).execute()
    return { user, otherToken, products, unblock }
  }

  test('deleting a user fails at its last step: user, sessions and products stay; then it works', async () => {
    const { user, otherToken, products, unblock } = await blockedUser()
    const admin = await adminAndLogin(ctx.app)
    assert.equal(await activeSessions(user.id), 2)

    const failed = await deleteUser(user)
    assertProblem(failed, 500)
    assert.doesNotMatch(
      failed.body,
      /catalogue_blocker|foreign|constraint/i,
      'nothing internal reaches the client',
    )
    assert.ok(await userExists(user.id), 'the user still exists')
    assert.equal(await activeSessions(user.id), 2, 'their sessions are still active')
    for (const product of products) assert.equal((await rowOf(ctx, product.id))?.owner_id, user.id)

    await unblock()
    // By an admin (the user's own token is the subject of the next test).
    const deleted = await deleteUser({ id: user.id, headers: admin.headers })
    assert.equal(deleted.statusCode, 204, deleted.body)
    assert.equal(await userExists(user.id), false)
    assert.equal(await activeSessions(user.id), 0)
    for (const product of products) assert.equal((await rowOf(ctx, product.id))?.owner_id, null)
    assert.equal((await me(otherToken)).statusCode, 401)
  })

  test("after a deletion that failed, the user's access tokens still work", async () => {
    const { user, otherToken, unblock } = await blockedUser()
    assertProblem(await deleteUser(user), 500)
    // Nothing was ended: the sessions are active in the database, so their tokens must be accepted.
    assert.equal(await activeSessions(user.id), 2)
    assert.equal((await me(user.token)).statusCode, 200, 'the token of the request that failed')
    assert.equal((await me(otherToken)).statusCode, 200, 'the token of another session')
    await unblock()
  })

  test('changing a password fails after ending the other sessions: password and sessions stay; then it works', async () => {
    const user = await registerAndLogin(ctx.app)
    const otherToken = await login(ctx.app, user.email, user.password)
    const newPassword = 'an entirely new passphrase 42'
    const storedHash = async () =>
      (
        await ctx.app.db
          .selectFrom('users')
          .select('password_hash')
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow()
      ).password_hash
    const hashBefore = await storedHash()
    const change = () =>
      ctx.app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: user.headers,
        payload: { current_password: user.password, new_password: newPassword },
      })
    const tryLogin = (password: string) =>
      ctx.app.inject({ method: 'POST', url: '/login', payload: { username: user.email, password } })

    // The other sessions are marked ended in the database, then the request fails.
    const sessions = ctx.app.sessions
    const endAllSessionsOf = sessions.endAllSessionsOf
    let calls = 0
    sessions.endAllSessionsOf = async (repos, userId, reason, keep) => {
      calls += 1
      const ids = (await repos.sessions.activeIds(userId)).filter((id) => id !== keep)
      assert.equal(ids.length, 1)
      await repos.sessions.revoke(ids, reason, new Date())
      throw new Error('failure after the sessions were revoked')
    }
    let failed: LightMyRequestResponse
    try {
      failed = await change()
    } finally {
      sessions.endAllSessionsOf = endAllSessionsOf
    }
    assert.equal(calls, 1, 'the failure happened where intended')
    assertProblem(failed, 500)
    assert.equal(await storedHash(), hashBefore, 'the password did not change')
    assert.equal(await activeSessions(user.id), 2, 'no session was ended')
    assert.equal((await me(otherToken)).statusCode, 200)
    assert.equal((await tryLogin(newPassword)).statusCode, 401)
    assert.equal((await tryLogin(user.password)).statusCode, 200)

    const changed = await change()
    assert.equal(changed.statusCode, 204, changed.body)
    assert.notEqual(await storedHash(), hashBefore)
    assert.equal((await tryLogin(newPassword)).statusCode, 200)
    assert.equal((await tryLogin(user.password)).statusCode, 401)
    assert.equal((await me(otherToken)).statusCode, 401, 'the other session ended')
    assert.equal((await me(user.token)).statusCode, 200, 'this session goes on')
  })
})
