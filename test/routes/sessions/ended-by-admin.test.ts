/** Deactivation, role change and deletion by an admin end the user's sessions on the very next request. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { decodeJwt } from 'jose'
import { adminAndLogin, assertProblem, bearer, describeEachEngine, uniqueUser } from '../../support/app.js'
import {
  loginPair,
  userWithSession,
  assertAccessWorks,
  refreshOk,
  assertSessionAlive,
  assertSessionDead,
} from './support.js'

// ------------------------------------------------------------------ admin actions end the user's sessions

describeEachEngine("admin actions end the user's sessions", (ctx) => {
  let admin: Awaited<ReturnType<typeof adminAndLogin>>
  before(async () => {
    admin = await adminAndLogin(ctx.app)
  })

  const patchUser = (id: number, body: Record<string, unknown>) =>
    ctx.app.inject({ method: 'PATCH', url: `/users/${id}`, headers: admin.headers, payload: body })

  /** A user with two sessions, one of them refreshed once (so older tokens exist too). */
  async function userWithTwoSessions() {
    const { account, session } = await userWithSession(ctx.app)
    const second = await loginPair(ctx.app, account, 'second-device')
    const refreshed = await refreshOk(ctx.app, second.refresh_token)
    await assertAccessWorks(ctx.app, session.access_token, account.id)
    await assertAccessWorks(ctx.app, refreshed.access_token, account.id)
    return { account, pairs: [session, refreshed] }
  }

  test("deactivating a user (is_active false) refuses the user's access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { is_active: false })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) {
      await assertSessionDead(ctx.app, pair, 'deactivated')
      // Not only the routes that read the account: any authenticated route refuses the token.
      assertProblem(
        await ctx.app.inject({ method: 'GET', url: '/product/', headers: bearer(pair.access_token) }),
        401,
      )
    }
    await assertAccessWorks(ctx.app, admin.token, admin.id, 'admin')
  })

  test("changing a user's role refuses the user's existing access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { role: 'admin' })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) await assertSessionDead(ctx.app, pair, 'role changed')
    // A new login carries the new role.
    const fresh = await loginPair(ctx.app, account)
    assert.equal(decodeJwt(fresh.access_token).role, 'admin')
    await assertAccessWorks(ctx.app, fresh.access_token, account.id)
  })

  test('changing only the name of a user leaves the sessions alone', async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await patchUser(account.id, { name: uniqueUser().name })
    assert.equal(response.statusCode, 200, response.body)
    for (const pair of pairs) await assertSessionAlive(ctx.app, pair, account.id, 'renamed')
  })

  test("deleting a user refuses the user's access and refresh tokens at once", async () => {
    const { account, pairs } = await userWithTwoSessions()
    const response = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${account.id}`,
      headers: admin.headers,
    })
    assert.equal(response.statusCode, 204, response.body)
    for (const pair of pairs) {
      await assertSessionDead(ctx.app, pair, 'deleted user')
      // Not only the routes that read the account: any authenticated route refuses the token.
      assertProblem(
        await ctx.app.inject({ method: 'GET', url: '/product/', headers: bearer(pair.access_token) }),
        401,
      )
    }
  })
})
