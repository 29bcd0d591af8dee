/** GET /product/, and products whose owner account was deleted. */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { createCursorCodec } from '../../../src/services/pagination.js'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  type ProductBody as Product,
  type ProductPage as Page,
  PRODUCT_FIELDS,
} from '../../support/app.js'
import {
  LONG_AGO,
  newProduct,
  createProduct,
  rowOf,
  countProducts,
  assertInvalid,
  walkPages,
  assertNewestFirst,
  flipFirstCharacter,
} from './support.js'

describeEachEngine('product routes', (ctx) => {
  let owner: Awaited<ReturnType<typeof registerAndLogin>>
  let other: Awaited<ReturnType<typeof registerAndLogin>>
  let admin: Awaited<ReturnType<typeof adminAndLogin>>

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    other = await registerAndLogin(ctx.app)
    admin = await adminAndLogin(ctx.app)
  })
  describe('GET /product/', () => {
    test('answers {items, next_cursor} with complete products, newest first', async () => {
      const mine = [await createProduct(ctx, owner), await createProduct(ctx, owner)]
      const response = await ctx.app.inject({ method: 'GET', url: '/product/', headers: other.headers })
      assert.equal(response.statusCode, 200, response.body)
      assert.match(String(response.headers['content-type']), /^application\/json/)
      const page = response.json<Page>()
      assert.deepEqual(Object.keys(page).sort(), ['items', 'next_cursor'])
      assert.ok(page.items.length <= 20)
      assert.ok(page.next_cursor === null || typeof page.next_cursor === 'string')
      for (const item of page.items) assert.deepEqual(Object.keys(item).sort(), PRODUCT_FIELDS)
      assertNewestFirst(page.items)
      // The two newest products are the ones just created, the later one first.
      assert.deepEqual(
        page.items.slice(0, 2).map((item) => item.id),
        [mine[1]!.id, mine[0]!.id],
      )
      assert.deepEqual(page.items[0], mine[1])

      const withoutSlash = await ctx.app.inject({ method: 'GET', url: '/product', headers: other.headers })
      assert.equal(withoutSlash.statusCode, 200)
      assert.deepEqual(withoutSlash.json(), page)
    })

    test('walking every page with limit=2 sees each product exactly once, in order', async () => {
      const mine: Product[] = []
      for (let i = 0; i < 7; i += 1) mine.push(await createProduct(ctx, owner, { price: i }))
      const all = await walkPages(ctx, owner, 2)
      assertNewestFirst(all)
      const ids = all.map((item) => item.id)
      assert.equal(new Set(ids).size, ids.length, 'no product is served twice')
      assert.equal(all.length, await countProducts(ctx), 'no product is left out')
      const skus = new Set(mine.map((product) => product.product_id))
      assert.deepEqual(
        all.filter((item) => skus.has(item.product_id)).map((item) => item.id),
        mine.map((product) => product.id).reverse(),
      )
    })

    test('a cursor stays valid when its last product is deleted or a newer one is added', async () => {
      const mine: Product[] = []
      for (let i = 0; i < 6; i += 1) mine.push(await createProduct(ctx, owner))
      const first = await ctx.app.inject({ method: 'GET', url: '/product/?limit=2', headers: owner.headers })
      assert.equal(first.statusCode, 200, first.body)
      const page = first.json<Page>()
      assert.deepEqual(
        page.items.map((item) => item.id),
        [mine[5]!.id, mine[4]!.id],
      )
      assert.ok(page.next_cursor)

      await ctx.app.inject({ method: 'DELETE', url: `/product/${mine[4]!.id}`, headers: owner.headers })
      const newer = await createProduct(ctx, owner)
      const next = await ctx.app.inject({
        method: 'GET',
        url: `/product/?limit=3&cursor=${encodeURIComponent(page.next_cursor)}`,
        headers: owner.headers,
      })
      assert.equal(next.statusCode, 200, next.body)
      const ids = next.json<Page>().items.map((item) => item.id)
      assert.deepEqual(ids, [mine[3]!.id, mine[2]!.id, mine[1]!.id])
      assert.ok(!ids.includes(newer.id))
    })

    for (const limit of ['0', '101', '-1', '1.5', 'x', '']) {
      test(`limit=${limit} is 422 naming "limit"`, async () => {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/product/?limit=${limit}`,
          headers: owner.headers,
        })
        assertInvalid(response, 'query', 'limit')
      })
    }

    test('limit=1 and limit=100 are accepted', async () => {
      await createProduct(ctx, owner)
      for (const limit of [1, 100]) {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/product/?limit=${limit}`,
          headers: owner.headers,
        })
        assert.equal(response.statusCode, 200, response.body)
        const page = response.json<Page>()
        assert.equal(page.items.length, Math.min(limit, await countProducts(ctx)))
      }
    })

    test('an unknown query parameter is 422 naming it', async () => {
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/product/?colour=red',
        headers: owner.headers,
      })
      assertInvalid(response, 'query', 'colour')
    })

    test('a tampered cursor is 422 naming "cursor"', async () => {
      await createProduct(ctx, owner)
      await createProduct(ctx, owner)
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/product/?limit=1',
        headers: owner.headers,
      })
      const cursor = response.json<Page>().next_cursor
      assert.ok(cursor, 'there is a second page')
      const [payload, signature] = cursor.split('.') as [string, string]
      const forged = createCursorCodec('some other secret').encode({ c: LONG_AGO.toISOString(), i: 1 })
      const candidates = [
        `${flipFirstCharacter(payload)}.${signature}`,
        `${payload}.${flipFirstCharacter(signature)}`,
        `${Buffer.from(JSON.stringify({ c: LONG_AGO.toISOString(), i: 1 })).toString('base64url')}.${signature}`,
        `${payload}.${signature}.extra`,
        payload,
        `${payload}.`,
        forged,
        'not-a-cursor',
        'x'.repeat(513),
      ]
      for (const candidate of candidates) {
        const tampered = await ctx.app.inject({
          method: 'GET',
          url: `/product/?cursor=${encodeURIComponent(candidate)}`,
          headers: owner.headers,
        })
        assertInvalid(tampered, 'query', 'cursor')
      }
      // The untouched cursor still works.
      const genuine = await ctx.app.inject({
        method: 'GET',
        url: `/product/?limit=1&cursor=${encodeURIComponent(cursor)}`,
        headers: owner.headers,
      })
      assert.equal(genuine.statusCode, 200, genuine.body)
    })

    test('a signed cursor whose position is not a product position is 422', async () => {
      // Signed with the server's own key, as a cursor from an older release could be.
      const codec = createCursorCodec(`${ctx.config.secretKey}:products`)
      const positions = [
        { c: 'not a date', i: 1 },
        { c: LONG_AGO.toISOString(), i: '1' },
        { c: LONG_AGO.toISOString() },
        { i: 1 },
        { id: 1 },
      ]
      for (const position of positions) {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/product/?cursor=${encodeURIComponent(codec.encode(position))}`,
          headers: owner.headers,
        })
        assertInvalid(response, 'query', 'cursor')
      }
    })

    test('a cursor from the users list is not accepted here', async () => {
      const users = await ctx.app.inject({ method: 'GET', url: '/users/?limit=1', headers: admin.headers })
      assert.equal(users.statusCode, 200, users.body)
      const cursor = users.json<{ next_cursor: string | null }>().next_cursor
      assert.ok(cursor, 'there are several users, so the users list has a second page')
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/product/?cursor=${encodeURIComponent(cursor)}`,
        headers: owner.headers,
      })
      assertInvalid(response, 'query', 'cursor')
    })
  })

  describe('when the owner account is deleted', () => {
    test('their products stay with owner_id null, and only an admin may change them', async () => {
      const leaving = await registerAndLogin(ctx.app)
      const kept = await createProduct(ctx, leaving)
      const removed = await createProduct(ctx, leaving)

      const deleted = await ctx.app.inject({
        method: 'DELETE',
        url: `/users/${leaving.id}`,
        headers: leaving.headers,
      })
      assert.equal(deleted.statusCode, 204, deleted.body)

      for (const product of [kept, removed]) {
        const row = await rowOf(ctx, product.id)
        assert.ok(row, 'the product outlives its owner')
        assert.equal(row.owner_id, null)
        assert.equal(row.product_id, product.product_id)
      }
      const fetched = await ctx.app.inject({
        method: 'GET',
        url: `/product/${kept.id}`,
        headers: other.headers,
      })
      assert.equal(fetched.statusCode, 200, fetched.body)
      assert.equal(fetched.json<Product>().owner_id, null)

      // The former owner's token no longer works.
      const stale = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${kept.id}`,
        headers: leaving.headers,
        payload: { price: 1 },
      })
      assertProblem(stale, 401)

      const stored = await rowOf(ctx, kept.id)
      const attempts = [
        { method: 'PUT', payload: newProduct() },
        { method: 'PATCH', payload: { price: 1 } },
        { method: 'DELETE' },
      ] as const
      for (const attempt of attempts) {
        const response = await ctx.app.inject({
          ...attempt,
          url: `/product/${kept.id}`,
          headers: other.headers,
        })
        assertProblem(response, 403)
      }
      assert.deepEqual(await rowOf(ctx, kept.id), stored, 'a regular user changed nothing')

      const patched = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${kept.id}`,
        headers: admin.headers,
        payload: { price: 99 },
      })
      assert.equal(patched.statusCode, 200, patched.body)
      assert.equal(patched.json<Product>().owner_id, null, 'the admin does not become the owner')
      assert.equal((await rowOf(ctx, kept.id))?.price, 99)

      const removedByAdmin = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${removed.id}`,
        headers: admin.headers,
      })
      assert.equal(removedByAdmin.statusCode, 204, removedByAdmin.body)
      assert.equal(await rowOf(ctx, removed.id), undefined)
    })
  })
})

describeEachEngine('the product list, on a database of its own', (ctx) => {
  let owner: Awaited<ReturnType<typeof registerAndLogin>>

  before(async () => {
    owner = await registerAndLogin(ctx.app)
  })

  test('an empty list is one page with no cursor', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/product/', headers: owner.headers })
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(response.json(), { items: [], next_cursor: null })
  })

  test('products created at the same instant are ordered by id, and no page loses one', async () => {
    const products: Product[] = []
    for (let i = 0; i < 7; i += 1) products.push(await createProduct(ctx, owner))
    assert.equal(await countProducts(ctx), 7, 'this database holds only these products')
    // Milliseconds matter: a cursor that dropped them would skip or repeat products.
    const moments = [
      '2024-05-01T10:00:00.123Z',
      '2024-05-01T10:00:00.123Z',
      '2024-05-01T10:00:00.123Z',
      '2023-12-31T23:59:59.999Z',
      '2024-05-01T10:00:00.999Z',
      '2024-05-01T10:00:00.999Z',
      '2024-05-01T10:00:00.124Z',
    ]
    for (const [index, moment] of moments.entries())
      await ctx.app.db
        .updateTable('products')
        .set({ created_at: new Date(moment) })
        .where('id', '=', products[index]!.id)
        .execute()
    // Newest instant first; among equal instants, the higher id first.
    const expected = [5, 4, 6, 2, 1, 0, 3].map((index) => products[index]!.id)

    for (const limit of [1, 2, 3, 6, 7, 100]) {
      const all = await walkPages(ctx, owner, limit)
      assert.deepEqual(
        all.map((item) => item.id),
        expected,
        `limit=${limit}`,
      )
    }
    const first = await ctx.app.inject({ method: 'GET', url: '/product/?limit=7', headers: owner.headers })
    assert.equal(first.json<Page>().next_cursor, null, 'a full last page has no cursor')
    assert.equal(first.json<Page>().items[0]!.created_at, '2024-05-01T10:00:00.999Z')
  })

  test('the default page holds 20 products', async () => {
    while ((await countProducts(ctx)) < 21) await createProduct(ctx, owner)
    const total = await countProducts(ctx)
    const response = await ctx.app.inject({ method: 'GET', url: '/product/', headers: owner.headers })
    assert.equal(response.statusCode, 200, response.body)
    const page = response.json<Page>()
    assert.equal(page.items.length, 20)
    assert.equal(typeof page.next_cursor, 'string')
    const all = await walkPages(ctx, owner)
    assert.equal(all.length, total)
    assert.equal(new Set(all.map((item) => item.id)).size, total)
  })
})
