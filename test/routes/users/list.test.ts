import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  uniqueUser,
} from '../../support/app.js'
import { type PublicUser, assertValidationProblem, assertPublicUser, createProduct } from './support.js'

// ------------------------------------------------------------------ GET /users/

describeEachEngine('GET /users/ (admin list)', (ctx) => {
  test('anonymous is 401 with WWW-Authenticate', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/users/' })
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
  })

  test('a user who is not an admin is 403', async () => {
    const user = await registerAndLogin(ctx.app)
    assertProblem(await ctx.app.inject({ method: 'GET', url: '/users/', headers: user.headers }), 403)
    assertProblem(await ctx.app.inject({ method: 'GET', url: '/users', headers: user.headers }), 403)
  })

  test('an admin gets {items, next_cursor} with public fields only', async () => {
    const admin = await adminAndLogin(ctx.app)
    const other = await register(ctx.app)
    for (const url of ['/users/', '/users']) {
      const response = await ctx.app.inject({
        method: 'GET',
        url: `${url}?limit=100`,
        headers: admin.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json<{ items: PublicUser[]; next_cursor: string | null }>()
      assert.deepEqual(Object.keys(page).sort(), ['items', 'next_cursor'])
      assert.ok(page.items.length >= 2)
      for (const item of page.items) assertPublicUser(item as unknown as Record<string, unknown>)
      const listed = page.items.find((item) => item.id === other.id)
      assert.equal(listed?.email, other.email)
      assert.equal(listed?.name, other.name)
      assert.ok(!response.body.includes('argon2'))
    }
  })

  test('?limit=2 walks every user once, in order, with no duplicates or gaps', async () => {
    const admin = await adminAndLogin(ctx.app)
    for (let i = 0; i < 5; i += 1) await register(ctx.app)
    const expected = (await ctx.app.db.selectFrom('users').select('id').orderBy('id').execute()).map(
      (row) => row.id,
    )
    assert.ok(expected.length >= 7)

    const seen: number[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const query: string = cursor ? `limit=2&cursor=${encodeURIComponent(cursor)}` : 'limit=2'
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?${query}`,
        headers: admin.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json<{ items: PublicUser[]; next_cursor: string | null }>()
      assert.ok(page.items.length >= 1 && page.items.length <= 2, `page of ${page.items.length}`)
      if (page.next_cursor !== null) assert.equal(page.items.length, 2)
      seen.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
      pages += 1
      assert.ok(pages <= expected.length, 'the pagination does not end')
    } while (cursor !== null)

    assert.deepEqual(seen, expected)
    assert.equal(pages, Math.ceil(expected.length / 2))
  })

  const badQueries: { query: string; field: string }[] = [
    { query: 'limit=0', field: 'limit' },
    { query: 'limit=101', field: 'limit' },
    { query: 'limit=-1', field: 'limit' },
    { query: 'limit=abc', field: 'limit' },
    { query: 'limit=1.5', field: 'limit' },
    { query: 'cursor=', field: 'cursor' },
    { query: 'cursor=garbage', field: 'cursor' },
    { query: 'role_filter=admin', field: 'role_filter' },
  ]
  for (const { query, field } of badQueries) {
    test(`?${query} is 422 naming ${field}`, async () => {
      const admin = await adminAndLogin(ctx.app)
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?${query}`,
        headers: admin.headers,
      })
      assertValidationProblem(response, [field], 'query')
    })
  }

  test('a cursor with one character changed is 422 naming cursor', async () => {
    const admin = await adminAndLogin(ctx.app)
    await register(ctx.app)
    const first = await ctx.app.inject({ method: 'GET', url: '/users/?limit=1', headers: admin.headers })
    const cursor = first.json<{ next_cursor: string | null }>().next_cursor
    assert.ok(cursor, 'the first page has a next_cursor')
    // The untouched cursor works …
    const next = await ctx.app.inject({
      method: 'GET',
      url: `/users/?limit=1&cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assert.equal(next.statusCode, 200, next.body)
    // … and changing any one character of it (payload, separator or signature) does not.
    for (const index of [0, Math.floor(cursor.length / 2), cursor.length - 1]) {
      const original = cursor[index]!
      const replacement = original === 'A' ? 'B' : 'A'
      const tampered = cursor.slice(0, index) + replacement + cursor.slice(index + 1)
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?limit=1&cursor=${encodeURIComponent(tampered)}`,
        headers: admin.headers,
      })
      assertValidationProblem(response, ['cursor'], 'query')
    }
  })

  test('a product list cursor is not a users cursor (422)', async () => {
    const admin = await adminAndLogin(ctx.app)
    await createProduct(ctx.app, admin.headers)
    await createProduct(ctx.app, admin.headers)
    const products = await ctx.app.inject({ method: 'GET', url: '/product/?limit=1', headers: admin.headers })
    assert.equal(products.statusCode, 200, products.body)
    const cursor = products.json<{ next_cursor: string | null }>().next_cursor
    assert.ok(cursor)
    const response = await ctx.app.inject({
      method: 'GET',
      url: `/users/?cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assertValidationProblem(response, ['cursor'], 'query')
  })
})

describeEachEngine('GET /users/ filters, on a database of its own', (ctx) => {
  test('q, role and is_active filter the list, page by page, and a cursor only continues its own list', async () => {
    const admin = await adminAndLogin(ctx.app)
    const made = []
    const people: [string, string][] = [
      ['Alice_Q', 'alice@shop.example'],
      ['alicia', 'ALICIA@other.example'],
      ['bob', 'bob@shop.example'],
      ['carol_100%', 'carol@shop.example'],
    ]
    for (const [name, email] of people) made.push(await register(ctx.app, { ...uniqueUser(), name, email }))
    await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', made[2]!.id).execute()
    await ctx.app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', made[1]!.id).execute()

    const names = async (query: string) => {
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const response: { statusCode: number; body: string; json: <T>() => T } = await ctx.app.inject({
          url: `/users/?limit=1&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          headers: admin.headers,
        })
        assert.equal(response.statusCode, 200, response.body)
        const page = response.json<{ items: { name: string }[]; next_cursor: string | null }>()
        seen.push(...page.items.map((item) => item.name))
        cursor = page.next_cursor
      } while (cursor)
      return seen
    }
    assert.deepEqual(await names('q=ALI'), ['Alice_Q', 'alicia'], 'case-insensitive, in name or email')
    assert.deepEqual(await names('q=shop.example'), ['Alice_Q', 'bob', 'carol_100%'], 'in the email')
    assert.deepEqual(await names('q=100%25'), ['carol_100%'], '% is taken literally')
    assert.deepEqual(await names('q=e_q'), ['Alice_Q'], '_ is taken literally')
    // As wildcards, these would match bob and alice/alicia:
    assert.deepEqual(await names('q=b_b'), [], '_ is not a wildcard')
    assert.deepEqual(await names('q=a%25c'), [], '% is not a wildcard')
    assert.deepEqual(await names('is_active=false'), ['bob'])
    assert.deepEqual(await names('role=admin&q=ali'), ['alicia'])
    assert.ok((await names('role=admin')).includes(admin.name))

    const first = await ctx.app.inject({ url: '/users/?limit=1&q=ali', headers: admin.headers })
    const cursor = first.json<{ next_cursor: string }>().next_cursor
    const mixed = await ctx.app.inject({
      url: `/users/?limit=1&q=bob&cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assert.equal(assertProblem(mixed, 422).errors?.[0]?.field, 'cursor')
    for (const bad of ['role=boss', 'is_active=maybe', `q=${'x'.repeat(101)}`, 'sort=name'])
      assertProblem(await ctx.app.inject({ url: `/users/?${bad}`, headers: admin.headers }), 422)
  })
})
