/** PUT /users/me/password, and the sessions it ends: their tokens are refused on the very next request. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine } from '../../support/app.js'
import {
  sidOf,
  loginPair,
  userWithSession,
  changePassword,
  assertAccessRefused,
  refreshOk,
  assertSessionAlive,
  assertSessionDead,
  sessionRow,
  invalidFields,
} from '../sessions/support.js'

// ------------------------------------------------------------------ PUT /users/me/password

describeEachEngine('PUT /users/me/password', (ctx) => {
  const passwordHash = async (id: number) =>
    (
      await ctx.app.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).password_hash

  test('a wrong current password is 422 naming current_password, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account, 'other-device')
    const hashBefore = await passwordHash(account.id)
    const response = await changePassword(ctx.app, session.access_token, {
      current_password: `${account.password}-wrong`,
      new_password: 'a brand new password',
    })
    assert.deepEqual(invalidFields(response), ['current_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
    await loginPair(ctx.app, account)
    assert.equal(
      (
        await ctx.app.inject({
          method: 'POST',
          url: '/login',
          payload: { username: account.email, password: 'a brand new password' },
        })
      ).statusCode,
      401,
    )
    await assertSessionAlive(ctx.app, other, account.id, 'other session')
    await assertSessionAlive(ctx.app, session, account.id, 'current session')
  })

  test('a too short new password is 422 naming new_password, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const other = await loginPair(ctx.app, account, 'other-device')
    const hashBefore = await passwordHash(account.id)
    const response = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: 'short',
    })
    assert.deepEqual(invalidFields(response), ['new_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
    await assertSessionAlive(ctx.app, other, account.id, 'other session')
  })

  test('an unknown field or a missing one is 422, and nothing changes', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const hashBefore = await passwordHash(account.id)
    const extra = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: 'a brand new password',
      confirm: 'a brand new password',
    })
    assert.deepEqual(invalidFields(extra), ['confirm'])
    const missing = await changePassword(ctx.app, session.access_token, {
      new_password: 'a brand new password',
    })
    assert.deepEqual(invalidFields(missing), ['current_password'])
    assert.equal(await passwordHash(account.id), hashBefore)
  })

  test('anonymous is 401', async () => {
    const response = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      payload: { current_password: 'whatever it is', new_password: 'a brand new password' },
    })
    assertProblem(response, 401)
  })

  test('success: 204; the new password logs in, the old does not; only the current session survives', async () => {
    const { account, session } = await userWithSession(ctx.app)
    const laptop = await loginPair(ctx.app, account, 'laptop')
    const tablet = await loginPair(ctx.app, account, 'tablet')
    const tabletRefreshed = await refreshOk(ctx.app, tablet.refresh_token)
    const newPassword = `new ${account.password}`

    const response = await changePassword(ctx.app, session.access_token, {
      current_password: account.password,
      new_password: newPassword,
    })
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')

    // Every other session is refused on the very next request, access and refresh tokens alike.
    await assertSessionDead(ctx.app, laptop, 'laptop')
    await assertSessionDead(ctx.app, tabletRefreshed, 'tablet')
    await assertAccessRefused(ctx.app, tablet.access_token, 'tablet (first access token)')
    for (const pair of [laptop, tablet])
      assert.equal((await sessionRow(ctx.app, sidOf(pair.access_token)))?.revoked_reason, 'password_changed')

    // The session that changed the password goes on.
    assert.equal((await sessionRow(ctx.app, sidOf(session.access_token)))?.revoked_at, null)
    await assertSessionAlive(ctx.app, session, account.id, 'current session')

    const oldLogin = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      payload: { username: account.email, password: account.password },
    })
    assertProblem(oldLogin, 401)
    await loginPair(ctx.app, { email: account.email, password: newPassword })
  })
})
