/** GET /product/{id} and PUT /product/{id}. */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  uniqueSku,
  type ProductBody as Product,
  PRODUCT_FIELDS,
} from '../../support/app.js'
import {
  MISSING_ID,
  LONG_AGO,
  newProduct,
  createProduct,
  rowOf,
  rowWithSku,
  countProducts,
  backdate,
  asJson,
  assertInvalid,
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
  describe('GET /product/{id}', () => {
    test('any authenticated user sees a product', async () => {
      const product = await createProduct(ctx, owner)
      for (const actor of [owner, other, admin]) {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/product/${product.id}`,
          headers: actor.headers,
        })
        assert.equal(response.statusCode, 200, response.body)
        assert.match(String(response.headers['content-type']), /^application\/json/)
        assert.deepEqual(response.json(), product)
      }
    })

    test('a product that does not exist is 404 problem+json', async () => {
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/product/${MISSING_ID}`,
        headers: owner.headers,
      })
      assertProblem(response, 404)
    })

    for (const id of ['abc', '0', '-1', '1.5', '99999999999']) {
      test(`an id of "${id}" is 422 naming the path parameter`, async () => {
        const response = await ctx.app.inject({
          method: 'GET',
          url: `/product/${id}`,
          headers: owner.headers,
        })
        assertInvalid(response, 'path', 'id')
      })
    }
  })

  describe('PUT /product/{id}', () => {
    test('the owner replaces every field; an omitted description becomes empty', async () => {
      const product = await createProduct(ctx, owner, { description: 'to be dropped' })
      await backdate(ctx, product.id)
      const replacement = { product_id: uniqueSku(), name: 'Replaced', price: 500 }
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: replacement,
      })
      assert.equal(response.statusCode, 200, response.body)
      const replaced = response.json<Product>()
      assert.deepEqual(Object.keys(replaced).sort(), PRODUCT_FIELDS)
      assert.equal(replaced.id, product.id)
      assert.equal(replaced.product_id, replacement.product_id)
      assert.equal(replaced.name, replacement.name)
      assert.equal(replaced.price, replacement.price)
      assert.equal(replaced.description, '')
      assert.equal(replaced.owner_id, owner.id)
      assert.equal(replaced.created_at, LONG_AGO.toISOString(), 'created_at does not change')
      assert.ok(Date.parse(replaced.updated_at) > LONG_AGO.getTime(), 'updated_at moves on')

      const row = await rowOf(ctx, product.id)
      assert.ok(row)
      assert.deepEqual(asJson(row), replaced)
      assert.equal(await rowWithSku(ctx, product.product_id), undefined, 'the old SKU is free')
    })

    test('keeping the same product_id is not a conflict', async () => {
      const product = await createProduct(ctx, owner)
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: { product_id: product.product_id, name: 'Same SKU', description: 'kept', price: 1 },
      })
      assert.equal(response.statusCode, 200, response.body)
      const row = await rowOf(ctx, product.id)
      assert.equal(row?.name, 'Same SKU')
      assert.equal(row?.description, 'kept')
      assert.equal(row?.price, 1)
    })

    test("a user cannot replace another user's product: 403 and the row is unchanged", async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${product.id}`,
        headers: other.headers,
        payload: newProduct({ name: 'Hijacked' }),
      })
      assertProblem(response, 403)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    test("an admin may replace anyone's product, which keeps its owner", async () => {
      const product = await createProduct(ctx, owner)
      const replacement = newProduct({ name: 'Fixed by admin', price: 7 })
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${product.id}`,
        headers: admin.headers,
        payload: replacement,
      })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.json<Product>().owner_id, owner.id)
      const row = await rowOf(ctx, product.id)
      assert.equal(row?.name, 'Fixed by admin')
      assert.equal(row?.product_id, replacement.product_id)
      assert.equal(row?.price, 7)
      assert.equal(row?.owner_id, owner.id)
    })

    test('a product that does not exist is 404 and nothing is created', async () => {
      const payload = newProduct()
      const count = await countProducts(ctx)
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${MISSING_ID}`,
        headers: admin.headers,
        payload,
      })
      assertProblem(response, 404)
      assert.equal(await countProducts(ctx), count)
      assert.equal(await rowWithSku(ctx, payload.product_id), undefined)
    })

    const invalidReplacements: { label: string; body: Record<string, unknown>; field: string }[] = [
      { label: 'an unknown field', body: { ...newProduct(), colour: 'red' }, field: 'colour' },
      { label: 'an owner_id', body: { ...newProduct(), owner_id: 1 }, field: 'owner_id' },
      { label: 'a missing price', body: { product_id: uniqueSku(), name: 'x' }, field: 'price' },
      { label: 'a missing name', body: { product_id: uniqueSku(), price: 1 }, field: 'name' },
      { label: 'a negative price', body: newProduct({ price: -1 }), field: 'price' },
      { label: 'a price as a string', body: newProduct({ price: '5' }), field: 'price' },
      { label: 'a bad SKU', body: newProduct({ product_id: 'no spaces allowed' }), field: 'product_id' },
    ]
    for (const { label, body, field } of invalidReplacements) {
      test(`a replacement with ${label} is 422 naming "${field}" and changes nothing`, async () => {
        const product = await createProduct(ctx, owner)
        const stored = await rowOf(ctx, product.id)
        const response = await ctx.app.inject({
          method: 'PUT',
          url: `/product/${product.id}`,
          headers: owner.headers,
          payload: body,
        })
        assertInvalid(response, 'body', field)
        assert.deepEqual(await rowOf(ctx, product.id), stored)
      })
    }

    test('taking the product_id of another product is 409 and changes nothing', async () => {
      const taken = await createProduct(ctx, other)
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const takenBefore = await rowOf(ctx, taken.id)
      const response = await ctx.app.inject({
        method: 'PUT',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: newProduct({ product_id: taken.product_id }),
      })
      assertProblem(response, 409)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
      assert.deepEqual(await rowOf(ctx, taken.id), takenBefore)
    })

    test('a bad id is 422 naming the path parameter', async () => {
      assertInvalid(
        await ctx.app.inject({
          method: 'PUT',
          url: '/product/abc',
          headers: owner.headers,
          payload: newProduct(),
        }),
        'path',
        'id',
      )
    })
  })
})
