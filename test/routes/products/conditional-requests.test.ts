/** ETag, If-None-Match and If-Match on the product routes. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  type ProductBody as Product,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  newProduct,
  createProduct,
  rowOf,
  getProduct,
  etagOf,
  write,
  changeFor,
} from './catalogue-support.js'

describeEachEngine('catalogue: ETag, If-None-Match and If-Match', (ctx) => {
  let owner: Actor
  let other: Actor
  let admin: Actor

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    other = await registerAndLogin(ctx.app)
    admin = await adminAndLogin(ctx.app)
  })

  test('GET /product/{id} has a strong ETag, the one POST answered with', async () => {
    const created = await ctx.app.inject({
      method: 'POST',
      url: '/product/',
      headers: owner.headers,
      payload: newProduct(),
    })
    assert.equal(created.statusCode, 201)
    const product = created.json<Product>()
    const etag = await etagOf(ctx, owner, product.id)
    assert.match(etag, /^"\d+"$/, 'a strong ETag: no W/ prefix')
    assert.equal(created.headers.etag, etag)
    assert.equal(await etagOf(ctx, other, product.id), etag, 'the same for every reader')
    assert.equal(await etagOf(ctx, owner, product.id), etag, 'stable while nothing changes')
  })

  for (const method of ['PUT', 'PATCH'] as const) {
    test(`${method} with the current ETag: 200, the new ETag in the response, and the change stored`, async () => {
      const product = await createProduct(ctx, owner)
      const before = await etagOf(ctx, owner, product.id)
      const response = await write(ctx, owner, method, product.id, before, changeFor(method, product, 4242))
      assert.equal(response.statusCode, 200, response.body)
      const after = response.headers.etag as string
      assert.match(after, /^"\d+"$/)
      assert.notEqual(after, before, 'the ETag changes with the product')
      assert.equal(await etagOf(ctx, owner, product.id), after, 'GET agrees with the response')
      assert.equal(response.json<Product>().price, 4242)
      assert.equal((await rowOf(ctx, product.id))?.price, 4242)
      // The next change names the new ETag; the old one no longer works.
      const again = await write(ctx, owner, method, product.id, after, changeFor(method, product, 4343))
      assert.equal(again.statusCode, 200, again.body)
      assert.notEqual(again.headers.etag, after)
    })

    test(`${method} with a stale ETag: 412 problem+json with the current ETag, and nothing changed`, async () => {
      const product = await createProduct(ctx, owner)
      const stale = await etagOf(ctx, owner, product.id)
      // Someone else changes it first (an admin, without If-Match).
      const first = await write(ctx, admin, 'PATCH', product.id, undefined, { price: 777 })
      assert.equal(first.statusCode, 200)
      const current = first.headers.etag as string
      const stored = await rowOf(ctx, product.id)

      const response = await write(ctx, owner, method, product.id, stale, changeFor(method, product, 1))
      assertProblem(response, 412)
      assert.equal(response.headers.etag, current, 'the 412 names the current ETag')
      assert.deepEqual(await rowOf(ctx, product.id), stored, 'the product is unchanged')
      assert.equal(await etagOf(ctx, owner, product.id), current)

      // Retrying with the ETag the 412 gave works.
      const retry = await write(ctx, owner, method, product.id, current, changeFor(method, product, 2))
      assert.equal(retry.statusCode, 200, retry.body)
      assert.equal((await rowOf(ctx, product.id))?.price, 2)
    })

    test(`${method}: a weak ETag never matches (strong comparison): 412, nothing changed`, async () => {
      const product = await createProduct(ctx, owner)
      const etag = await etagOf(ctx, owner, product.id)
      const stored = await rowOf(ctx, product.id)
      for (const header of [`W/${etag}`, etag.slice(1, -1), `"${etag}"`]) {
        const response = await write(ctx, owner, method, product.id, header, changeFor(method, product, 1))
        assertProblem(response, 412)
        assert.equal(response.headers.etag, etag, `If-Match: ${header}`)
      }
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    test(`${method} with If-Match: * or a list holding the current ETag: 200`, async () => {
      const product = await createProduct(ctx, owner)
      const star = await write(ctx, owner, method, product.id, '*', changeFor(method, product, 11))
      assert.equal(star.statusCode, 200, star.body)
      const current = star.headers.etag as string
      const listed = await write(
        ctx,
        owner,
        method,
        product.id,
        `"0", W/"1", ${current}`,
        changeFor(method, product, 12),
      )
      assert.equal(listed.statusCode, 200, listed.body)
      assert.equal((await rowOf(ctx, product.id))?.price, 12)
    })

    test(`${method} without If-Match still works: the last write wins`, async () => {
      const product = await createProduct(ctx, owner)
      const first = await write(ctx, owner, method, product.id, undefined, changeFor(method, product, 21))
      const second = await write(ctx, admin, method, product.id, undefined, changeFor(method, product, 22))
      assert.equal(first.statusCode, 200, first.body)
      assert.equal(second.statusCode, 200, second.body)
      assert.notEqual(first.headers.etag, second.headers.etag)
      assert.equal((await rowOf(ctx, product.id))?.price, 22)
      assert.equal(await etagOf(ctx, owner, product.id), second.headers.etag)
    })

    test(`${method}: 404 and 403 come before If-Match is looked at`, async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      assertProblem(await write(ctx, owner, method, 2_147_483_647, '"1"', changeFor(method, product, 1)), 404)
      assertProblem(await write(ctx, other, method, product.id, '"999"', changeFor(method, product, 1)), 403)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })
  }

  test('DELETE with a stale or weak ETag is 412 and the product stays; with the current one it goes', async () => {
    const product = await createProduct(ctx, owner)
    const stale = await etagOf(ctx, owner, product.id)
    const changed = await write(ctx, owner, 'PATCH', product.id, stale, { price: 5 })
    const current = changed.headers.etag as string
    const stored = await rowOf(ctx, product.id)
    for (const header of [stale, `W/${current}`]) {
      const response = await write(ctx, owner, 'DELETE', product.id, header)
      assertProblem(response, 412)
      assert.equal(response.headers.etag, current)
      assert.deepEqual(await rowOf(ctx, product.id), stored, 'the product is still there, unchanged')
    }
    const deleted = await write(ctx, owner, 'DELETE', product.id, current)
    assert.equal(deleted.statusCode, 204, deleted.body)
    assert.equal(await rowOf(ctx, product.id), undefined)
  })

  test('DELETE with If-Match: * deletes', async () => {
    const product = await createProduct(ctx, owner)
    assert.equal((await write(ctx, owner, 'DELETE', product.id, '*')).statusCode, 204)
    assert.equal(await rowOf(ctx, product.id), undefined)
  })

  test('If-None-Match with the current ETag is 304 without a body; with another, 200', async () => {
    const product = await createProduct(ctx, owner)
    const etag = await etagOf(ctx, owner, product.id)
    for (const header of [etag, `W/${etag}`, `"0", ${etag}`, '*']) {
      const response = await getProduct(ctx, owner, product.id, { 'if-none-match': header })
      assert.equal(response.statusCode, 304, `If-None-Match: ${header}`)
      assert.equal(response.body, '')
      assert.equal(response.headers.etag, etag)
    }
    const changed = await write(ctx, owner, 'PATCH', product.id, etag, { price: 1 })
    const stale = await getProduct(ctx, owner, product.id, { 'if-none-match': etag })
    assert.equal(stale.statusCode, 200)
    assert.equal(stale.json<Product>().price, 1)
    assert.equal(stale.headers.etag, changed.headers.etag)
  })
})

describeEachEngine(
  'catalogue: with REQUIRE_IF_MATCH=true',
  (ctx) => {
    let owner: Actor

    before(async () => {
      owner = await registerAndLogin(ctx.app)
    })

    test('PUT, PATCH and DELETE without If-Match are 428 and change nothing', async () => {
      const product = await createProduct(ctx, owner)
      const stored = await rowOf(ctx, product.id)
      const attempts = [
        write(ctx, owner, 'PUT', product.id, undefined, changeFor('PUT', product, 1)),
        write(ctx, owner, 'PATCH', product.id, undefined, { price: 1 }),
        write(ctx, owner, 'DELETE', product.id, undefined),
      ]
      for (const response of await Promise.all(attempts)) assertProblem(response, 428)
      assert.deepEqual(await rowOf(ctx, product.id), stored)
    })

    test('with the current ETag they work; with a stale one they are 412', async () => {
      const product = await createProduct(ctx, owner)
      const first = await etagOf(ctx, owner, product.id)
      const put = await write(ctx, owner, 'PUT', product.id, first, changeFor('PUT', product, 1))
      assert.equal(put.statusCode, 200, put.body)
      assertProblem(await write(ctx, owner, 'PATCH', product.id, first, { price: 2 }), 412)
      const patch = await write(ctx, owner, 'PATCH', product.id, put.headers.etag as string, { price: 3 })
      assert.equal(patch.statusCode, 200, patch.body)
      assertProblem(await write(ctx, owner, 'DELETE', product.id, put.headers.etag as string), 412)
      assert.equal((await rowOf(ctx, product.id))?.price, 3)
      assert.equal(
        (await write(ctx, owner, 'DELETE', product.id, patch.headers.etag as string)).statusCode,
        204,
      )
      assert.equal(await rowOf(ctx, product.id), undefined)
    })

    test('creating and reading need no If-Match', async () => {
      const product = await createProduct(ctx, owner)
      assert.equal((await getProduct(ctx, owner, product.id)).statusCode, 200)
    })
  },
  { env: { REQUIRE_IF_MATCH: 'true' } },
)
