/** The product routes without a valid access token, and POST /product/. */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import {
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  uniqueSku,
  type ProductBody as Product,
  PRODUCT_FIELDS,
} from '../../support/app.js'
import {
  LONG_AGO,
  newProduct,
  createProduct,
  rowOf,
  rowWithSku,
  countProducts,
  asJson,
  assertInvalid,
  tamperedSignature,
} from './support.js'

describeEachEngine('product routes', (ctx) => {
  let owner: Awaited<ReturnType<typeof registerAndLogin>>
  let other: Awaited<ReturnType<typeof registerAndLogin>>

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    other = await registerAndLogin(ctx.app)
  })

  describe('without a valid access token', () => {
    test('every product route answers 401 problem+json with WWW-Authenticate: Bearer', async () => {
      const product = await createProduct(ctx, owner)
      const routes = [
        { method: 'POST', url: '/product/', payload: newProduct() },
        { method: 'POST', url: '/product', payload: newProduct() },
        { method: 'GET', url: '/product/' },
        { method: 'GET', url: '/product' },
        { method: 'GET', url: `/product/${product.id}` },
        { method: 'PUT', url: `/product/${product.id}`, payload: newProduct() },
        { method: 'PATCH', url: `/product/${product.id}`, payload: { price: 1 } },
        { method: 'DELETE', url: `/product/${product.id}` },
      ] as const
      const credentials = [
        {},
        { authorization: 'Bearer not-a-jwt' },
        { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        { authorization: `Bearer ${tamperedSignature(owner.token)}` },
      ]
      const stored = await rowOf(ctx, product.id)
      const count = await countProducts(ctx)
      for (const route of routes) {
        for (const headers of credentials) {
          const response = await ctx.app.inject({ ...route, headers })
          const label = `${route.method} ${route.url} with ${JSON.stringify(headers)}`
          assert.equal(response.statusCode, 401, label)
          assertProblem(response, 401)
          assert.match(String(response.headers['www-authenticate']), /^Bearer\b/, label)
        }
      }
      assert.deepEqual(await rowOf(ctx, product.id), stored, 'the product is untouched')
      assert.equal(await countProducts(ctx), count, 'nothing was created')
    })

    test('a token that is refused says why in WWW-Authenticate', async () => {
      const response = await ctx.app.inject({
        method: 'GET',
        url: '/product/',
        headers: { authorization: 'Bearer not-a-jwt' },
      })
      assertProblem(response, 401)
      assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/)
    })
  })

  describe('POST /product/', () => {
    test('creates a product owned by the caller: 201, Location and the stored fields', async () => {
      const payload = newProduct({ name: 'Keyboard ⌨️ “Ünïcode”', description: 'Line one\nLine two' })
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/product/',
        headers: owner.headers,
        payload,
      })
      assert.equal(response.statusCode, 201, response.body)
      assert.match(String(response.headers['content-type']), /^application\/json/)
      const product = response.json<Product>()
      assert.deepEqual(Object.keys(product).sort(), PRODUCT_FIELDS)
      assert.ok(Number.isInteger(product.id) && product.id > 0)
      assert.equal(response.headers.location, `/product/${product.id}`)
      assert.equal(product.product_id, payload.product_id)
      assert.equal(product.name, payload.name)
      assert.equal(product.description, payload.description)
      assert.equal(product.price, payload.price)
      assert.equal(product.owner_id, owner.id)
      assert.equal(product.created_at, product.updated_at)
      assert.equal(new Date(product.created_at).toISOString(), product.created_at)

      const row = await rowOf(ctx, product.id)
      assert.ok(row, 'the product is stored')
      assert.deepEqual(asJson(row), product, 'the body is what the database holds')
    })

    test('also answers at /product without the trailing slash', async () => {
      const payload = newProduct()
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/product',
        headers: owner.headers,
        payload,
      })
      assert.equal(response.statusCode, 201, response.body)
      const product = response.json<Product>()
      assert.equal(response.headers.location, `/product/${product.id}`)
      assert.equal((await rowWithSku(ctx, payload.product_id))?.id, product.id)
    })

    test('description defaults to an empty string', async () => {
      const { description: _omitted, ...payload } = newProduct()
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/product/',
        headers: owner.headers,
        payload,
      })
      assert.equal(response.statusCode, 201, response.body)
      assert.equal(response.json<Product>().description, '')
      assert.equal((await rowWithSku(ctx, payload.product_id))?.description, '')
    })

    test('the largest accepted values round-trip exactly', async () => {
      const payload = newProduct({
        product_id: `${uniqueSku()}-`.padEnd(64, 'x'),
        name: '😀'.repeat(200),
        description: 'é'.repeat(2500) + '😀'.repeat(2500),
        price: Number.MAX_SAFE_INTEGER,
      })
      const created = await ctx.app.inject({
        method: 'POST',
        url: '/product/',
        headers: owner.headers,
        payload,
      })
      assert.equal(created.statusCode, 201, created.body)
      const product = created.json<Product>()
      const fetched = await ctx.app.inject({
        method: 'GET',
        url: `/product/${product.id}`,
        headers: other.headers,
      })
      assert.equal(fetched.statusCode, 200, fetched.body)
      for (const body of [product, fetched.json<Product>()]) {
        assert.equal(body.product_id, payload.product_id)
        assert.equal(body.name, payload.name)
        assert.equal(body.description, payload.description)
        assert.equal(body.price, Number.MAX_SAFE_INTEGER)
      }
      const row = await rowOf(ctx, product.id)
      assert.equal(row?.price, Number.MAX_SAFE_INTEGER)
      assert.equal(row?.name, payload.name)
      assert.equal(row?.description, payload.description)
    })

    test('a price of 0 is accepted', async () => {
      const product = await createProduct(ctx, owner, { price: 0 })
      assert.equal(product.price, 0)
      assert.equal((await rowOf(ctx, product.id))?.price, 0)
    })

    test('a duplicate product_id is 409 and creates nothing', async () => {
      const first = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, first.id)
      const count = await countProducts(ctx)
      for (const actor of [owner, other]) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/product/',
          headers: actor.headers,
          payload: newProduct({ product_id: first.product_id, name: 'Another name' }),
        })
        const problem = assertProblem(response, 409)
        assert.match(problem.detail, /product_id/)
      }
      assert.equal(await countProducts(ctx), count)
      assert.deepEqual(await rowOf(ctx, first.id), stored, 'the existing product is untouched')
    })

    // Each case is a good product with one thing wrong: `body` overrides fields, `omit` drops them.
    const invalidBodies: { label: string; body?: Record<string, unknown>; omit?: string; field: string }[] = [
      { label: 'no product_id', omit: 'product_id', field: 'product_id' },
      { label: 'no name', omit: 'name', field: 'name' },
      { label: 'no price', omit: 'price', field: 'price' },
      { label: 'an owner_id chosen by the client', body: { owner_id: 1 }, field: 'owner_id' },
      { label: 'an id chosen by the client', body: { id: 1 }, field: 'id' },
      {
        label: 'a created_at chosen by the client',
        body: { created_at: LONG_AGO.toISOString() },
        field: 'created_at',
      },
      { label: 'a negative price', body: { price: -1 }, field: 'price' },
      { label: 'a fractional price', body: { price: 1.5 }, field: 'price' },
      { label: 'a price sent as a string', body: { price: '100' }, field: 'price' },
      { label: 'a null price', body: { price: null }, field: 'price' },
      { label: 'a boolean price', body: { price: true }, field: 'price' },
      { label: 'a price above 2^53 - 1', body: { price: Number.MAX_SAFE_INTEGER + 1 }, field: 'price' },
      { label: 'a name of 201 characters', body: { name: 'n'.repeat(201) }, field: 'name' },
      { label: 'an empty name', body: { name: '' }, field: 'name' },
      { label: 'a name that is a number', body: { name: 42 }, field: 'name' },
      { label: 'a name with a NUL character', body: { name: 'nul\u0000byte' }, field: 'name' },
      { label: 'a name with a lone surrogate', body: { name: 'half \ud83d emoji' }, field: 'name' },
      { label: 'a SKU with a space', body: { product_id: 'SKU 1' }, field: 'product_id' },
      { label: 'a SKU with a slash', body: { product_id: 'SKU/1' }, field: 'product_id' },
      { label: 'a SKU starting with "-"', body: { product_id: '-SKU' }, field: 'product_id' },
      { label: 'a SKU with non-ASCII letters', body: { product_id: 'SKÜ-1' }, field: 'product_id' },
      { label: 'an empty SKU', body: { product_id: '' }, field: 'product_id' },
      { label: 'a SKU of 65 characters', body: { product_id: 'S'.repeat(65) }, field: 'product_id' },
      {
        label: 'a description of 5001 characters',
        body: { description: 'd'.repeat(5001) },
        field: 'description',
      },
      { label: 'a null description', body: { description: null }, field: 'description' },
      {
        label: 'a description with a NUL character',
        body: { description: 'a\u0000b' },
        field: 'description',
      },
    ]

    for (const { label, body, omit, field } of invalidBodies) {
      test(`${label} is 422 naming "${field}" and creates nothing`, async () => {
        const payload: Record<string, unknown> = { ...newProduct(), ...body }
        if (omit) delete payload[omit]
        const count = await countProducts(ctx)
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/product/',
          headers: owner.headers,
          payload,
        })
        assertInvalid(response, 'body', field)
        assert.equal(await countProducts(ctx), count, 'nothing was created')
        if (typeof payload.product_id === 'string')
          assert.equal(await rowWithSku(ctx, payload.product_id), undefined)
      })
    }

    test('every bad field is reported at once', async () => {
      const count = await countProducts(ctx)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/product/',
        headers: owner.headers,
        payload: { product_id: 'bad sku', name: '', price: -5, colour: 'red' },
      })
      const problem = assertInvalid(response, 'body', 'product_id')
      const fields = new Set(problem.errors!.map((issue) => issue.field))
      for (const field of ['product_id', 'name', 'price', 'colour']) assert.ok(fields.has(field), field)
      assert.equal(await countProducts(ctx), count)
    })

    test('numbers too large for a double are refused, not rounded', async () => {
      const sku = uniqueSku()
      const count = await countProducts(ctx)
      for (const price of ['9007199254740993', '99999999999999999999', '1e400']) {
        const response = await ctx.app.inject({
          method: 'POST',
          url: '/product/',
          headers: { ...owner.headers, 'content-type': 'application/json' },
          payload: `{"product_id": "${sku}", "name": "Big", "price": ${price}}`,
        })
        assertInvalid(response, 'body', 'price')
      }
      assert.equal(await countProducts(ctx), count)
      assert.equal(await rowWithSku(ctx, sku), undefined)
    })

    test('a body that is not a JSON object is refused with a problem and creates nothing', async () => {
      const count = await countProducts(ctx)
      const json = { ...owner.headers, 'content-type': 'application/json' }
      assertProblem(
        await ctx.app.inject({ method: 'POST', url: '/product/', headers: json, payload: '[]' }),
        422,
      )
      assertProblem(
        await ctx.app.inject({ method: 'POST', url: '/product/', headers: json, payload: '{"name": ' }),
        400,
      )
      assertProblem(
        await ctx.app.inject({
          method: 'POST',
          url: '/product/',
          headers: { ...owner.headers, 'content-type': 'application/xml' },
          payload: '<product><product_id>SKU-1</product_id></product>',
        }),
        415,
      )
      assert.equal(await countProducts(ctx), count)
    })
  })
})
