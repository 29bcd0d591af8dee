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
import { type PublicUser, patchUser, userRow, assertValidationProblem, assertPublicUser } from './support.js'

// ------------------------------------------------------------------ GET /users/{id}

describeEachEngine('GET /users/{id}', (ctx) => {
  test('a user reads their own account, and /users/me is the same', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}`, headers: user.headers })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(body.id, user.id)
    assert.equal(body.email, user.email)
    assert.equal(body.name, user.name)
    assert.equal(response.headers['cache-control'], 'no-store')

    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })
    assert.equal(me.statusCode, 200)
    assert.deepEqual(me.json(), body)
  })

  test('an admin reads anyone', async () => {
    const admin = await adminAndLogin(ctx.app)
    const other = await register(ctx.app)
    const response = await ctx.app.inject({
      method: 'GET',
      url: `/users/${other.id}`,
      headers: admin.headers,
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().email, other.email)
  })

  test("another user's account is 403, and so is an id that does not exist (existence is not revealed)", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const existing = await ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: user.headers })
    const missing = await ctx.app.inject({ method: 'GET', url: '/users/2147483647', headers: user.headers })
    assertProblem(existing, 403)
    assertProblem(missing, 403)
    assert.deepEqual(missing.json(), existing.json())
    assert.ok(!existing.body.includes(other.email))
  })

  test('an admin asking for an id that does not exist gets 404', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(
      await ctx.app.inject({ method: 'GET', url: '/users/2147483647', headers: admin.headers }),
      404,
    )
  })

  for (const id of ['abc', '0', '-1', '1.5', '2147483648']) {
    test(`id "${id}" is 422 naming the path parameter`, async () => {
      const admin = await adminAndLogin(ctx.app)
      const response = await ctx.app.inject({ method: 'GET', url: `/users/${id}`, headers: admin.headers })
      assertValidationProblem(response, ['id'], 'path')
    })
  }

  test('anonymous is 401', async () => {
    const user = await register(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}` })
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
  })
})

// ------------------------------------------------------------------ PATCH /users/{id}

describeEachEngine('PATCH /users/{id}', (ctx) => {
  test('a user changes their own name and email; a new email must be verified again', async () => {
    const user = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const fresh = uniqueUser()
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: fresh.name, email: fresh.email.toUpperCase(), current_password: user.password },
      user.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(body.name, fresh.name)
    assert.equal(body.email, fresh.email)
    assert.equal(body.email_verified, false)
    assert.equal(body.role, 'user')

    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.name, fresh.name)
    assert.equal(row?.email, fresh.email)
    assert.equal(row?.email_verified, false)
    assert.equal(row?.updated_at.toISOString(), body.updated_at)

    // The new email and name log in; the old email no longer does.
    assert.ok(await login(ctx.app, fresh.email, user.password))
    assert.ok(await login(ctx.app, fresh.name, user.password))
    await assert.rejects(login(ctx.app, user.email, user.password), /401/)
  })

  test('changing only the case of your own name is allowed', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await patchUser(ctx.app, user.id, { name: user.name.toUpperCase() }, user.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().name, user.name.toUpperCase())
    assert.equal((await userRow(ctx.app, user.id))?.name, user.name.toUpperCase())
  })

  test('sending your own email in another case keeps it verified', async () => {
    const user = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const response = await patchUser(ctx.app, user.id, { email: user.email.toUpperCase() }, user.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().email_verified, true)
    assert.equal((await userRow(ctx.app, user.id))?.email_verified, true)
  })

  for (const change of [{ role: 'admin' }, { is_active: false }, { name: 'whatever', role: 'user' }]) {
    test(`a user sending ${JSON.stringify(change)} about themself is 403 and nothing changes`, async () => {
      const user = await registerAndLogin(ctx.app)
      const before = await userRow(ctx.app, user.id)
      assertProblem(await patchUser(ctx.app, user.id, change, user.headers), 403)
      assert.deepEqual(await userRow(ctx.app, user.id), before)
    })
  }

  test("a user changing another user's account is 403 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, other.id)
    assertProblem(await patchUser(ctx.app, other.id, { name: uniqueUser().name }, user.headers), 403)
    assertProblem(await patchUser(ctx.app, other.id, { email: uniqueUser().email }, user.headers), 403)
    assert.deepEqual(await userRow(ctx.app, other.id), before)
  })

  test('a user changing an id that does not exist is 403, like any other account', async () => {
    const user = await registerAndLogin(ctx.app)
    assertProblem(await patchUser(ctx.app, 2147483647, { name: uniqueUser().name }, user.headers), 403)
  })

  test('an admin changes the role and is_active of a user', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await register(ctx.app)
    const promoted = await patchUser(ctx.app, user.id, { role: 'admin' }, admin.headers)
    assert.equal(promoted.statusCode, 200, promoted.body)
    assert.equal(promoted.json<PublicUser>().role, 'admin')
    assert.equal((await userRow(ctx.app, user.id))?.role, 'admin')

    const changed = await patchUser(ctx.app, user.id, { role: 'user', is_active: false }, admin.headers)
    assert.equal(changed.statusCode, 200, changed.body)
    assert.equal(changed.json<PublicUser>().role, 'user')
    assert.equal(changed.json<PublicUser>().is_active, false)
    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.role, 'user')
    assert.equal(row?.is_active, false)
  })

  test('an admin changes the name and email of a user', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await register(ctx.app)
    const fresh = uniqueUser()
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: fresh.name, email: fresh.email },
      admin.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.name, fresh.name)
    assert.equal(row?.email, fresh.email)
  })

  test('a deactivated user can no longer log in, and their token stops working at once', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await registerAndLogin(ctx.app)
    const ok = await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers })
    assert.equal(ok.statusCode, 200)

    const response = await patchUser(ctx.app, user.id, { is_active: false }, admin.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().is_active, false)

    for (const url of ['/current-user', `/users/${user.id}`]) {
      const rejected = await ctx.app.inject({ method: 'GET', url, headers: user.headers })
      assertProblem(rejected, 401)
      assert.match(String(rejected.headers['www-authenticate']), /^Bearer/)
    }
    const selfRevive = await patchUser(ctx.app, user.id, { name: uniqueUser().name }, user.headers)
    assertProblem(selfRevive, 401)
    const loginResponse = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: user.email, password: user.password }).toString(),
    })
    assertProblem(loginResponse, 401)

    // Reactivated, the account logs in again.
    const reactivated = await patchUser(ctx.app, user.id, { is_active: true }, admin.headers)
    assert.equal(reactivated.statusCode, 200, reactivated.body)
    assert.ok(await login(ctx.app, user.email, user.password))
  })

  test("taking another user's name, in another case, is 409 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, user.id)
    const response = await patchUser(ctx.app, user.id, { name: other.name.toUpperCase() }, user.headers)
    assert.match(assertProblem(response, 409).detail, /name/i)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })

  test("taking another user's email, in another case, is 409 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const before = await userRow(ctx.app, user.id)
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: uniqueUser().name, email: other.email.toUpperCase(), current_password: user.password },
      user.headers,
    )
    assert.match(assertProblem(response, 409).detail, /email/i)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })

  const invalid: { title: string; payload: unknown; fields: string[] }[] = [
    { title: 'an empty body {}', payload: {}, fields: [] },
    { title: 'an unknown field', payload: { nickname: 'x' }, fields: ['nickname'] },
    {
      title: 'a password (changed elsewhere)',
      payload: { password: 'new password here' },
      fields: ['password'],
    },
    { title: 'email_verified', payload: { email_verified: true }, fields: ['email_verified'] },
    { title: 'a string as is_active', payload: { is_active: 'false' }, fields: ['is_active'] },
    { title: 'a number as name', payload: { name: 42 }, fields: ['name'] },
    { title: 'a name of 65 characters', payload: { name: 'n'.repeat(65) }, fields: ['name'] },
    { title: 'a name with a leading space', payload: { name: ' spaced' }, fields: ['name'] },
    { title: 'a name with a NUL character', payload: { name: 'nul\u0000name' }, fields: ['name'] },
    { title: 'a name too long once lower-cased', payload: { name: 'İ'.repeat(64) }, fields: ['name'] },
    { title: 'a bad email', payload: { email: 'nope' }, fields: ['email'] },
    { title: 'an unknown role', payload: { role: 'root' }, fields: ['role'] },
  ]
  for (const { title, payload, fields } of invalid) {
    test(`a change with ${title} is 422 and nothing changes`, async () => {
      const user = await registerAndLogin(ctx.app)
      const before = await userRow(ctx.app, user.id)
      assertValidationProblem(await patchUser(ctx.app, user.id, payload, user.headers), fields)
      assert.deepEqual(await userRow(ctx.app, user.id), before)
    })
  }

  test('an admin changing an id that does not exist gets 404', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(await patchUser(ctx.app, 2147483647, { name: uniqueUser().name }, admin.headers), 404)
  })

  test('id "abc" is 422, and anonymous is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    assertValidationProblem(await patchUser(ctx.app, 'abc', { name: 'x' }, user.headers), ['id'], 'path')
    const before = await userRow(ctx.app, user.id)
    assertProblem(await patchUser(ctx.app, user.id, { name: uniqueUser().name }), 401)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })
})
