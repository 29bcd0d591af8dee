import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  uniqueSku,
  uniqueUser,
} from '../support/app.js'

describeEachEngine('input rules shared by every route', (ctx) => {
  test('a login name with a NUL or a control character is a 422 naming username, never a 500', async () => {
    for (const username of ['a\u0000b', 'line\nbreak', '\u001b[31mred']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/login',
        payload: { username, password: 'whatever1' },
      })
      const problem = assertProblem(response, 422)
      assert.deepEqual(
        problem.errors?.map((issue) => issue.field),
        ['username'],
      )
    }
  })

  test('integer path and query parameters must be plain decimal: hex, exponent, padded or fractional forms are 422', async () => {
    const owner = await registerAndLogin(ctx.app)
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/product/',
      headers: owner.headers,
      payload: { product_id: uniqueSku(), name: 'Decimal', price: 1 },
    })
    const { id } = created.json<{ id: number }>()
    assert.equal((await ctx.app.inject({ url: `/product/${id}`, headers: owner.headers })).statusCode, 200)
    for (const form of [`0x${id.toString(16)}`, `${id}e0`, `%20${id}`, `${id}.0`, `+${id}`, `0${id}`]) {
      const response = await ctx.app.inject({ url: `/product/${form}`, headers: owner.headers })
      const problem = assertProblem(response, 422)
      assert.deepEqual(problem.errors, [
        { in: 'path', field: 'id', message: 'must be a whole number in decimal digits' },
      ])
    }
    for (const limit of ['0x5', '5e0', '05']) {
      const response = await ctx.app.inject({ url: `/product/?limit=${limit}`, headers: owner.headers })
      assert.equal(assertProblem(response, 422).errors?.[0]?.field, 'limit')
    }
  })

  test('a price with a fraction says that prices are whole minor units, and nothing is created', async () => {
    const owner = await registerAndLogin(ctx.app)
    const before = await ctx.app.db.selectFrom('products').select('id').execute()
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/product/',
      headers: owner.headers,
      payload: { product_id: uniqueSku(), name: 'Fraction', price: 12.99 },
    })
    assert.deepEqual(assertProblem(response, 422).errors, [
      {
        in: 'body',
        field: 'price',
        message:
          'must be a whole number (in minor currency units, e.g. cents: 12.99 is sent as 1299; at least 0)',
      },
    ])
    assert.equal((await ctx.app.db.selectFrom('products').select('id').execute()).length, before.length)
  })

  test('a text/plain body is 415 on JSON routes, and nothing is created', async () => {
    const owner = await registerAndLogin(ctx.app)
    const before = await ctx.app.db.selectFrom('products').select('id').execute()
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/product/',
      headers: { ...owner.headers, 'content-type': 'text/plain' },
      payload: JSON.stringify({ product_id: uniqueSku(), name: 'Plain', price: 1 }),
    })
    assertProblem(response, 415)
    assert.equal((await ctx.app.db.selectFrom('products').select('id').execute()).length, before.length)
  })

  test('a request without a body where one is required says so', async () => {
    const response = await ctx.app.inject({ method: 'POST', url: '/users/' })
    const problem = assertProblem(response, 422)
    assert.deepEqual(problem.errors, [
      { in: 'body', field: '', message: 'a JSON object is required as the request body' },
    ])
  })

  test('a value refused by a pattern is explained in words, not by the regular expression', async () => {
    const owner = await registerAndLogin(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/product/',
      headers: owner.headers,
      payload: { product_id: 'has space', name: 'Sku', price: 1 },
    })
    const issue = assertProblem(response, 422).errors?.[0]
    assert.equal(issue?.field, 'product_id')
    assert.match(issue?.message ?? '', /letters, digits/)
    assert.doesNotMatch(issue?.message ?? '', /\^|\$|\[/)
  })

  test('unknown routes and their methods are problem+json 404s', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/nothing-here?secret=1' })
    const problem = assertProblem(response, 404)
    assert.doesNotMatch(problem.detail, /secret/)
  })

  test('a badly percent-encoded path or an over-long path parameter is problem+json too, not the router’s JSON', async () => {
    const owner = await registerAndLogin(ctx.app)
    for (const url of ['/users/%', '/product/%FF', '/product/%E0%A4%A']) {
      const response = await ctx.app.inject({ url, headers: owner.headers })
      assert.match(assertProblem(response, 400).detail, /percent-encoded/)
    }
    const response = await ctx.app.inject({ url: `/users/${'1'.repeat(150)}`, headers: owner.headers })
    assertProblem(response, 414)
  })
})

describeEachEngine('account input rules', (ctx) => {
  test('a very common password is refused (422 naming the field) at registration and password change', async () => {
    for (const password of ['password123', 'Sunshine1', 'qwertyuiop']) {
      const user = { ...uniqueUser(), password }
      const response = await ctx.app.inject({ method: 'POST', url: '/users/', payload: user })
      assert.deepEqual(assertProblem(response, 422).errors, [
        { in: 'body', field: 'password', message: 'is one of the most common passwords' },
      ])
      const stored = await ctx.app.db
        .selectFrom('users')
        .select('id')
        .where('email', '=', user.email)
        .execute()
      assert.equal(stored.length, 0)
    }
    const owner = await registerAndLogin(ctx.app)
    const change = await ctx.app.inject({
      method: 'PUT',
      url: '/users/me/password',
      headers: owner.headers,
      payload: { current_password: owner.password, new_password: 'iloveyou123' },
    })
    assert.equal(assertProblem(change, 422).errors?.[0]?.field, 'new_password')
  })

  test('look-alike Unicode emails cannot be registered: addresses are ASCII', async () => {
    // Cyrillic "а" (U+0430) instead of Latin "a", and full-width letters.
    for (const email of ['\u0430dmin@example.com', 'ａdmin@example.com', 'admin@exаmple.com']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        payload: { ...uniqueUser(), email },
      })
      assert.equal(assertProblem(response, 422).errors?.[0]?.field, 'email')
    }
  })

  test('a user changing their own email must give the current password; it resets email_verified', async () => {
    const user = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const newEmail = uniqueUser().email
    const patch = (payload: Record<string, unknown>) =>
      ctx.app.inject({ method: 'PATCH', url: `/users/${user.id}`, headers: user.headers, payload })
    const stored = () =>
      ctx.app.db
        .selectFrom('users')
        .select(['email', 'email_verified'])
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow()

    const missing = await patch({ email: newEmail })
    assert.equal(assertProblem(missing, 422).errors?.[0]?.field, 'current_password')
    const wrong = await patch({ email: newEmail, current_password: 'not the password' })
    assert.equal(assertProblem(wrong, 422).errors?.[0]?.field, 'current_password')
    assert.deepEqual(await stored(), { email: user.email, email_verified: true }, 'nothing changed')

    const right = await patch({ email: newEmail, current_password: user.password })
    assert.equal(right.statusCode, 200, right.body)
    assert.deepEqual(await stored(), { email: newEmail, email_verified: false })
    // The name alone needs no password.
    assert.equal((await patch({ name: uniqueUser().name })).statusCode, 200)

    // An admin changing someone else's email needs no password of theirs.
    const admin = await adminAndLogin(ctx.app)
    const byAdmin = await ctx.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: admin.headers,
      payload: { email: uniqueUser().email },
    })
    assert.equal(byAdmin.statusCode, 200, byAdmin.body)
  })
})
