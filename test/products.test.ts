import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { createCursorCodec } from '../src/services/pagination.js'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  uniqueSku,
  type EngineContext,
  type ProductBody as Product,
  type ProductPage as Page,
  type TestActor as Actor,
  PRODUCT_FIELDS,
} from './support/app.js'

/** An id no test database reaches, inside the range the path accepts. */
const MISSING_ID = 2_147_483_647

/** A moment well before any test runs: rows moved there make "updated_at changed" certain. */
const LONG_AGO = new Date('2020-01-02T03:04:05.678Z')

const newProduct = (overrides: Record<string, unknown> = {}) => ({
  product_id: uniqueSku(),
  name: 'Mechanical keyboard',
  description: 'Tenkeyless, brown switches.',
  price: 12999,
  ...overrides,
})

async function createProduct(
  ctx: EngineContext,
  actor: Actor,
  overrides: Record<string, unknown> = {},
): Promise<Product> {
  const response = await ctx.app.inject({
    method: 'POST',
    url: '/product/',
    headers: actor.headers,
    payload: newProduct(overrides),
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json<Product>()
}

/** The stored columns a client sees (version and search_text are internal). */
const PUBLIC_COLUMNS = [
  'id',
  'product_id',
  'name',
  'description',
  'price',
  'owner_id',
  'created_at',
  'updated_at',
] as const

const rowOf = (ctx: EngineContext, id: number) =>
  ctx.app.db.selectFrom('products').select(PUBLIC_COLUMNS).where('id', '=', id).executeTakeFirst()

const rowWithSku = (ctx: EngineContext, sku: string) =>
  ctx.app.db.selectFrom('products').select(PUBLIC_COLUMNS).where('product_id', '=', sku).executeTakeFirst()

async function countProducts(ctx: EngineContext): Promise<number> {
  const row = await ctx.app.db
    .selectFrom('products')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Moves a product's timestamps into the past, so a later change of updated_at is certain. */
async function backdate(ctx: EngineContext, id: number) {
  await ctx.app.db
    .updateTable('products')
    .set({ created_at: LONG_AGO, updated_at: LONG_AGO })
    .where('id', '=', id)
    .execute()
}

/** The product as the API shows it, built from the database row. */
function asJson(row: NonNullable<Awaited<ReturnType<typeof rowOf>>>): Product {
  return { ...row, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() }
}

/** A 422 problem whose `errors` name the given field in the given part of the request. */
function assertInvalid(response: LightMyRequestResponse, where: 'body' | 'query' | 'path', field: string) {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors) && problem.errors.length > 0, 'a 422 lists its errors')
  assert.ok(
    problem.errors.some((issue) => issue.in === where && issue.field === field),
    `expected an error for ${where} field "${field}", got ${JSON.stringify(problem.errors)}`,
  )
  for (const issue of problem.errors) assert.equal(typeof issue.message, 'string')
  return problem
}

/** Walks every page of GET /product/ and returns the items in the order they were served. */
async function walkPages(ctx: EngineContext, actor: Actor, limit?: number): Promise<Product[]> {
  const seen: Product[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const query = new URLSearchParams()
    if (limit !== undefined) query.set('limit', String(limit))
    if (cursor !== null) query.set('cursor', cursor)
    const response = await ctx.app.inject({
      method: 'GET',
      url: `/product/?${query.toString()}`,
      headers: actor.headers,
    })
    assert.equal(response.statusCode, 200, response.body)
    const page = response.json<Page>()
    assert.deepEqual(Object.keys(page).sort(), ['items', 'next_cursor'])
    assert.ok(page.items.length <= (limit ?? 20), 'a page never holds more than the limit')
    if (page.next_cursor !== null) assert.equal(page.items.length, limit ?? 20, 'only the last page is short')
    seen.push(...page.items)
    cursor = page.next_cursor
    pages += 1
    assert.ok(pages <= 1000, 'the pages must come to an end')
  } while (cursor !== null)
  return seen
}

/** Newest first: created_at descending, then id descending among equal instants. */
function assertNewestFirst(items: Product[]) {
  for (let i = 1; i < items.length; i += 1) {
    const previous = items[i - 1]!
    const current = items[i]!
    const a = Date.parse(previous.created_at)
    const b = Date.parse(current.created_at)
    assert.ok(
      a > b || (a === b && previous.id > current.id),
      `${previous.id} (${previous.created_at}) must come before ${current.id} (${current.created_at})`,
    )
  }
}

/** The same JWT with a signature that no longer matches. */
function tamperedSignature(token: string): string {
  const [header, claims, signature] = token.split('.') as [string, string, string]
  return `${header}.${claims}.${flipFirstCharacter(signature)}`
}

/** Changes one character of a base64url segment so that it decodes to different bytes. */
function flipFirstCharacter(segment: string): string {
  return (segment[0] === 'A' ? 'B' : 'A') + segment.slice(1)
}

describeEachEngine('product routes', (ctx) => {
  let owner: Awaited<ReturnType<typeof registerAndLogin>>
  let other: Awaited<ReturnType<typeof registerAndLogin>>
  let admin: Awaited<ReturnType<typeof adminAndLogin>>

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    other = await registerAndLogin(ctx.app)
    admin = await adminAndLogin(ctx.app)
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
