import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  login,
  register,
  registerAndLogin,
  uniqueUser,
} from '../../support/app.js'
import {
  type PublicUser,
  type Headers,
  patchUser,
  userRow,
  activeAdminIds,
  assertValidationProblem,
  soleAdmin,
  createProduct,
} from './support.js'

// ------------------------------------------------------------------ DELETE /users/{id}

describeEachEngine('DELETE /users/{id}', (ctx) => {
  const remove = (id: number | string, headers: Headers = {}) =>
    ctx.app.inject({ method: 'DELETE', url: `/users/${id}`, headers })

  test('a user deletes their own account: 204, the row is gone, the token and password stop working', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await remove(user.id, user.headers)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')
    assert.equal(await userRow(ctx.app, user.id), undefined)

    assertProblem(await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers }), 401)
    await assert.rejects(login(ctx.app, user.email, user.password), /401/)
    // The name and email are free again.
    await register(ctx.app, uniqueUser({ name: user.name, email: user.email }))
  })

  test("a user deleting another user's account is 403 and the row stays", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, other.id)
    assertProblem(await remove(other.id, user.headers), 403)
    assert.deepEqual(await userRow(ctx.app, other.id), before)
    assertProblem(await remove(2147483647, user.headers), 403)
  })

  test("an admin deletes a user; the user's products stay, with owner_id null", async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await registerAndLogin(ctx.app)
    const product = await createProduct(ctx.app, user.headers)
    assert.equal(product.owner_id, user.id)

    const response = await remove(user.id, admin.headers)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(await userRow(ctx.app, user.id), undefined)

    const row = await ctx.app.db
      .selectFrom('products')
      .selectAll()
      .where('id', '=', product.id)
      .executeTakeFirst()
    assert.ok(row, 'the product is gone')
    assert.equal(row.owner_id, null)
    const shown = await ctx.app.inject({
      method: 'GET',
      url: `/product/${product.id}`,
      headers: admin.headers,
    })
    assert.equal(shown.statusCode, 200, shown.body)
    assert.equal(shown.json<{ owner_id: number | null }>().owner_id, null)
  })

  test('an admin deleting an id that does not exist gets 404, also for an account just deleted', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(await remove(2147483647, admin.headers), 404)
    const user = await register(ctx.app)
    assert.equal((await remove(user.id, admin.headers)).statusCode, 204)
    assertProblem(await remove(user.id, admin.headers), 404)
  })

  test('id "abc" is 422, and anonymous is 401 with the row left in place', async () => {
    const user = await registerAndLogin(ctx.app)
    assertValidationProblem(await remove('abc', user.headers), ['id'], 'path')
    assertProblem(await remove(user.id), 401)
    assert.ok(await userRow(ctx.app, user.id))
  })
})

// ------------------------------------------------------------------ the last active admin

describeEachEngine('the last active admin', (ctx) => {
  test('cannot demote themself (409), and nothing changes', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers), 409)
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('cannot deactivate themself (409), and nothing changes', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(await patchUser(ctx.app, admin.id, { is_active: false }, admin.headers), 409)
    const nameAndRole = await patchUser(
      ctx.app,
      admin.id,
      { name: uniqueUser().name, role: 'user' },
      admin.headers,
    )
    assertProblem(nameAndRole, 409)
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('cannot delete themself (409), and the row stays', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(
      await ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
      409,
    )
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('an inactive second admin does not count', async () => {
    const admin = await soleAdmin(ctx.app)
    const dormant = await register(ctx.app)
    await ctx.app.db
      .updateTable('users')
      .set({ role: 'admin', is_active: false })
      .where('id', '=', dormant.id)
      .execute()
    assertProblem(await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers), 409)
    assertProblem(
      await ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
      409,
    )
    assert.deepEqual(await activeAdminIds(ctx.app), [admin.id])
  })

  test('once there is another active admin, an admin may step down or leave', async () => {
    const admin = await soleAdmin(ctx.app)
    const second = await adminAndLogin(ctx.app)
    const demoted = await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers)
    assert.equal(demoted.statusCode, 200, demoted.body)
    assert.equal(demoted.json<PublicUser>().role, 'user')
    assert.deepEqual(await activeAdminIds(ctx.app), [second.id])

    const third = await adminAndLogin(ctx.app)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${second.id}`,
      headers: second.headers,
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    assert.deepEqual(await activeAdminIds(ctx.app), [third.id])
  })

  test('two admins demoting each other at the same moment leave one admin', async () => {
    for (let round = 0; round < 4; round += 1) {
      const a = await soleAdmin(ctx.app)
      const b = await adminAndLogin(ctx.app)
      const responses = await Promise.all([
        patchUser(ctx.app, b.id, { role: 'user' }, a.headers),
        patchUser(ctx.app, a.id, { role: 'user' }, b.headers),
      ])
      const statuses = responses.map((response) => response.statusCode).sort()
      // The loser is refused: 409 (last admin), or 401 when its demotion (which ends its sessions)
      // came first.
      assert.ok(
        ['[200,409]', '[200,401]'].includes(JSON.stringify(statuses)),
        `round ${round}: ${JSON.stringify(statuses)}`,
      )
      assert.equal((await activeAdminIds(ctx.app)).length, 1, `round ${round}: no admin is left`)
    }
  })

  test('two admins deleting themselves at the same moment leave one admin', async () => {
    for (let round = 0; round < 4; round += 1) {
      const a = await soleAdmin(ctx.app)
      const b = await adminAndLogin(ctx.app)
      const responses = await Promise.all(
        [a, b].map((admin) =>
          ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
        ),
      )
      const statuses = responses.map((response) => response.statusCode).sort()
      assert.deepEqual(statuses, [204, 409], `round ${round}`)
      assert.equal((await activeAdminIds(ctx.app)).length, 1, `round ${round}: no admin is left`)
    }
  })
})
