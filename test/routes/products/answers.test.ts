/**
 * The catalogue's answers word for word (404, 403, 412, 428, a price range upside down), the
 * cursors only this list could have issued, and the two failures a request reaches only in a race:
 * a creator deleted since the request was authenticated, and a change the database refuses for a
 * reason other than a duplicate SKU.
 */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import { DomainError } from '../../../src/services/errors.js'
import { requestFingerprint } from '../../../src/services/idempotency.js'
import { createKeysetPaging } from '../../../src/services/pagination.js'
import {
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  TEST_SECRET,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  countProducts,
  createProduct,
  etagOf,
  getPage,
  getProduct,
  listProducts,
  newKey,
  newProduct,
  postWithKey,
  rowOf,
  storedKey,
  write,
} from './catalogue-support.js'
import { MISSING_ID } from './support.js'

/**
 * A cursor signed as the server signs them (the tests know its secret), holding any position:
 * what a client could send only if it had the server's key.
 */
function signedCursor(list: string, sort: string, position: Record<string, string | number>) {
  const paging = createKeysetPaging(TEST_SECRET, list)
  // The filters as the products list fingerprints them: the sort, and no filter set.
  return paging.page([{}, {}], 1, { sort, filters: {} }, () => position).next_cursor!
}

const CHANGED = 'The product has changed since you read it: GET it again and retry with its new ETag.'

describeEachEngine('catalogue answers', (ctx) => {
  let owner: Actor
  let stranger: Actor

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    stranger = await registerAndLogin(ctx.app)
  })

  test('a product that does not exist: 404 naming its id, for reading, changing and deleting', async () => {
    const detail = `There is no product ${MISSING_ID}.`
    assert.equal(assertProblem(await getProduct(ctx, owner, MISSING_ID), 404).detail, detail)
    for (const method of ['PATCH', 'DELETE'] as const) {
      const response = await write(
        ctx,
        owner,
        method,
        MISSING_ID,
        undefined,
        method === 'PATCH' ? { price: 1 } : undefined,
      )
      assert.equal(assertProblem(response, 404).detail, detail)
    }
  })

  test('another user’s product: 403 saying who may change it, and it is unchanged', async () => {
    const product = await createProduct(ctx, owner)
    const stored = await rowOf(ctx, product.id)
    const response = await write(ctx, stranger, 'PATCH', product.id, undefined, { price: 1 })
    assert.equal(
      assertProblem(response, 403).detail,
      'Only the owner of this product or an admin may change it.',
    )
    assert.deepEqual(await rowOf(ctx, product.id), stored)
  })

  test('a stale ETag: 412 saying to read the product again, with its current ETag', async () => {
    const product = await createProduct(ctx, owner)
    const first = await etagOf(ctx, owner, product.id)
    assert.equal((await write(ctx, owner, 'PATCH', product.id, first, { price: 2 })).statusCode, 200)
    for (const method of ['PATCH', 'DELETE'] as const) {
      const response = await write(
        ctx,
        owner,
        method,
        product.id,
        first,
        method === 'PATCH' ? { price: 3 } : undefined,
      )
      assert.equal(assertProblem(response, 412).detail, CHANGED)
      assert.equal(response.headers.etag, await etagOf(ctx, owner, product.id))
    }
    assert.equal((await rowOf(ctx, product.id))?.price, 2)
  })

  test('min_price above max_price: 422 naming min_price, word for word; each bound alone, or equal, is a list', async () => {
    const response = await listProducts(ctx, owner, { min_price: 10, max_price: 9 })
    const problem = assertProblem(response, 422)
    assert.equal(problem.detail, 'min_price is above max_price.')
    assert.deepEqual(problem.errors, [
      { in: 'query', field: 'min_price', message: 'must not be above max_price' },
    ])
    await getPage(ctx, owner, { min_price: 10 })
    await getPage(ctx, owner, { max_price: 9 })
    await getPage(ctx, owner, { min_price: 10, max_price: 10 })
  })

  test('a cursor of this list in this sort works; the same position signed for another list is refused', async () => {
    const product = await createProduct(ctx, owner, { name: 'A cursor fixture' })
    const cursor = signedCursor('products', 'name', { v: 'A cursor fixture', i: product.id - 1 })
    const page = await getPage(ctx, owner, { sort: 'name', cursor })
    assert.ok(page.items.some((item) => item.id === product.id))

    const foreign = signedCursor('users', 'name', { v: 'A cursor fixture', i: product.id - 1 })
    assertProblem(await listProducts(ctx, owner, { sort: 'name', cursor: foreign }), 422)
  })

  test('a signed cursor whose position does not fit its sort is refused as not issued by the server', async () => {
    const misfits: [string, Record<string, string | number>][] = [
      ['created_at', { v: 1_700_000_000_000, i: 1 }], // a number where a time belongs
      ['created_at', { v: 'not a time', i: 1 }],
      ['price', { v: '100', i: 1 }],
      ['name', { v: 7, i: 1 }],
      ['name', { v: 'a name', i: '1' }],
    ]
    for (const [sort, position] of misfits) {
      const response = await listProducts(ctx, owner, {
        sort,
        cursor: signedCursor('products', sort, position),
      })
      const problem = assertProblem(response, 422)
      assert.match(problem.detail, /^The cursor is not valid/, `${sort} ${JSON.stringify(position)}`)
    }
  })

  test('an Idempotency-Key is stored with the fingerprint of "POST /product/" and the fields, as keys stored before were', async () => {
    // The operation's name is part of every stored fingerprint: renamed, no retry of a key stored
    // before the change would match its first request any more.
    const key = newKey()
    const body = newProduct()
    assert.equal((await postWithKey(ctx, owner, key, body)).statusCode, 201)
    assert.equal(
      (await storedKey(ctx, owner.id, key))?.request_hash,
      requestFingerprint('POST /product/', body),
    )
  })

  test('a creator whose account was deleted since the request was authenticated: 401, nothing created', async () => {
    const before = await countProducts(ctx)
    await assert.rejects(
      ctx.app.products.create({ id: MISSING_ID, role: 'user' }, newProduct()),
      (error: unknown) =>
        error instanceof DomainError &&
        error.kind === 'unauthenticated' &&
        error.detail === 'The account no longer exists',
    )
    assert.equal(await countProducts(ctx), before)
  })

  test('a change the database refuses for another reason than a duplicate SKU is not reported as one', async () => {
    const product = await createProduct(ctx, owner)
    const stored = await rowOf(ctx, product.id)
    // No route changes the owner; the service, asked to, meets the database's foreign key.
    await assert.rejects(
      ctx.app.products.change({ id: owner.id, role: 'admin' }, product.id, undefined, {
        owner_id: MISSING_ID,
      }),
      (error: unknown) => !(error instanceof DomainError),
    )
    assert.deepEqual(await rowOf(ctx, product.id), stored)
  })
})

describeEachEngine(
  'catalogue answers with REQUIRE_IF_MATCH=true',
  (ctx) => {
    test('a change without If-Match: 428 saying where the ETag comes from', async () => {
      const owner = await registerAndLogin(ctx.app)
      const product = await createProduct(ctx, owner)
      const response = await write(ctx, owner, 'PATCH', product.id, undefined, { price: 1 })
      assert.equal(
        assertProblem(response, 428).detail,
        'Send If-Match with the ETag from GET /product/{id}: changes must name the version they change.',
      )
    })
  },
  { env: { REQUIRE_IF_MATCH: 'true' } },
)
