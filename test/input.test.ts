import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assertProblem, describeEachEngine, registerAndLogin, uniqueSku } from './helper.js'

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
})
