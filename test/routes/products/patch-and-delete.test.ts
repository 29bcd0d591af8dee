/** PATCH /product/{id} and DELETE /product/{id}. */
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
  createProduct,
  rowOf,
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
  describe('PATCH /product/{id}', () => {
    test('the owner changes the price only; the other fields stay', async () => {
      const product = await createProduct(ctx, owner)
      await backdate(ctx, product.id)
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: { price: 4242 },
      })
      assert.equal(response.statusCode, 200, response.body)
      const changed = response.json<Product>()
      assert.deepEqual(Object.keys(changed).sort(), PRODUCT_FIELDS)
      assert.equal(changed.price, 4242)
      assert.equal(changed.product_id, product.product_id)
      assert.equal(changed.name, product.name)
      assert.equal(changed.description, product.description)
      assert.equal(changed.owner_id, owner.id)
      assert.equal(changed.created_at, LONG_AGO.toISOString())
      assert.ok(Date.parse(changed.updated_at) > LONG_AGO.getTime(), 'updated_at moves on')
      const row = await rowOf(ctx, product.id)
      assert.ok(row)
      assert.deepEqual(asJson(row), changed)
    })

    test('the owner may clear the description and rename the SKU', async () => {
      const product = await createProduct(ctx, owner)
      const sku = uniqueSku()
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: { description: '', product_id: sku },
      })
      assert.equal(response.statusCode, 200, response.body)
      const row = await rowOf(ctx, product.id)
      assert.equal(row?.description, '')
      assert.equal(row?.product_id, sku)
      assert.equal(row?.price, product.price)
    })

    test("a user cannot change another user's product: 403 and the row is unchanged", async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: other.headers,
        payload: { price: 1 },
      })
      assertProblem(response, 403)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    test("an admin may change anyone's product, which keeps its owner", async () => {
      const product = await createProduct(ctx, owner)
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: admin.headers,
        payload: { name: 'Renamed by admin' },
      })
      assert.equal(response.statusCode, 200, response.body)
      assert.equal(response.json<Product>().name, 'Renamed by admin')
      const row = await rowOf(ctx, product.id)
      assert.equal(row?.name, 'Renamed by admin')
      assert.equal(row?.owner_id, owner.id)
      assert.equal(row?.price, product.price)
    })

    test('a product that does not exist is 404', async () => {
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${MISSING_ID}`,
        headers: admin.headers,
        payload: { price: 1 },
      })
      assertProblem(response, 404)
    })

    test('an empty change is 422 and changes nothing', async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: {},
      })
      const problem = assertProblem(response, 422)
      assert.ok(problem.errors && problem.errors.length > 0)
      assert.equal(problem.errors[0]!.in, 'body')
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    const invalidChanges: { label: string; body: Record<string, unknown>; field: string }[] = [
      { label: 'an owner_id', body: { owner_id: 1 }, field: 'owner_id' },
      { label: 'an unknown field next to a good one', body: { price: 1, colour: 'red' }, field: 'colour' },
      { label: 'a negative price', body: { price: -1 }, field: 'price' },
      { label: 'a fractional price', body: { price: 0.5 }, field: 'price' },
      { label: 'a price as a string', body: { price: '100' }, field: 'price' },
      { label: 'a null name', body: { name: null }, field: 'name' },
      { label: 'an empty name', body: { name: '' }, field: 'name' },
      {
        label: 'a description of 5001 characters',
        body: { description: 'd'.repeat(5001) },
        field: 'description',
      },
      { label: 'a bad SKU', body: { product_id: 'a b' }, field: 'product_id' },
    ]
    for (const { label, body, field } of invalidChanges) {
      test(`a change with ${label} is 422 naming "${field}" and changes nothing`, async () => {
        const product = await createProduct(ctx, owner)
        const stored = await rowOf(ctx, product.id)
        const response = await ctx.app.inject({
          method: 'PATCH',
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
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/product/${product.id}`,
        headers: owner.headers,
        payload: { product_id: taken.product_id, price: 1 },
      })
      assertProblem(response, 409)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
      assert.equal((await rowOf(ctx, taken.id))?.product_id, taken.product_id)
    })
  })

  describe('DELETE /product/{id}', () => {
    test("a user cannot delete another user's product: 403 and it is still there", async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${product.id}`,
        headers: other.headers,
      })
      assertProblem(response, 403)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    test('the owner deletes a product: 204, then it is gone', async () => {
      const product = await createProduct(ctx, owner)
      const count = await countProducts(ctx)
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${product.id}`,
        headers: owner.headers,
      })
      assert.equal(response.statusCode, 204, response.body)
      assert.equal(response.body, '')
      assert.equal(await rowOf(ctx, product.id), undefined)
      assert.equal(await countProducts(ctx), count - 1)

      const fetched = await ctx.app.inject({
        method: 'GET',
        url: `/product/${product.id}`,
        headers: owner.headers,
      })
      assertProblem(fetched, 404)
      const again = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${product.id}`,
        headers: owner.headers,
      })
      assertProblem(again, 404)

      // Its SKU is free again.
      const reused = await createProduct(ctx, other, { product_id: product.product_id })
      assert.notEqual(reused.id, product.id)
    })

    test("an admin deletes someone else's product: 204", async () => {
      const product = await createProduct(ctx, owner)
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${product.id}`,
        headers: admin.headers,
      })
      assert.equal(response.statusCode, 204, response.body)
      assert.equal(await rowOf(ctx, product.id), undefined)
    })

    test('a product that does not exist is 404 and nothing is deleted', async () => {
      const count = await countProducts(ctx)
      const response = await ctx.app.inject({
        method: 'DELETE',
        url: `/product/${MISSING_ID}`,
        headers: admin.headers,
      })
      assertProblem(response, 404)
      assert.equal(await countProducts(ctx), count)
    })

    test('a bad id is 422 and nothing is deleted', async () => {
      const count = await countProducts(ctx)
      for (const id of ['abc', '0', '-1', '99999999999']) {
        assertInvalid(
          await ctx.app.inject({ method: 'DELETE', url: `/product/${id}`, headers: admin.headers }),
          'path',
          'id',
        )
      }
      assert.equal(await countProducts(ctx), count)
    })
  })
})
