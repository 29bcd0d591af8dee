/** Idempotency-Key on POST /product/. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  assertProblem,
  describeEachEngine,
  registerAndLogin,
  uniqueSku,
  type ProductBody as Product,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  newProduct,
  createProduct,
  rowOf,
  countProducts,
  assertInvalid,
  write,
  postWithKey,
  storedKey,
  newKey,
} from './catalogue-support.js'

describeEachEngine('catalogue: Idempotency-Key on POST /product/', (ctx) => {
  let alice: Actor
  let bob: Actor

  before(async () => {
    alice = await registerAndLogin(ctx.app)
    bob = await registerAndLogin(ctx.app)
  })

  test('a retry with the same key and body answers the first 201 again and creates nothing', async () => {
    const key = newKey()
    const body = newProduct({ description: 'once only' })
    const total = await countProducts(ctx)
    const first = await postWithKey(ctx, alice, key, body)
    assert.equal(first.statusCode, 201, first.body)
    assert.equal(first.headers['idempotent-replayed'], undefined, 'the first answer is not a replay')
    const product = first.json<Product>()

    // The same body, its fields in another order.
    const reordered = Object.fromEntries(Object.entries(body).reverse())
    for (const payload of [body, reordered, body]) {
      const retry = await postWithKey(ctx, alice, key, payload)
      assert.equal(retry.statusCode, 201, retry.body)
      assert.equal(retry.headers['idempotent-replayed'], 'true')
      assert.deepEqual(retry.json(), product, 'the same product, field for field')
      assert.equal(retry.headers.location, first.headers.location)
    }
    assert.equal(await countProducts(ctx, body.product_id), 1)
    assert.equal(await countProducts(ctx), total + 1)

    const stored = await storedKey(ctx, alice.id, key)
    assert.ok(stored)
    assert.equal(stored.response_status, 201)
    assert.equal(stored.expires_at.getTime() - stored.created_at.getTime(), 24 * 60 * 60 * 1000, 'kept 24 h')
  })

  test('the same key with another body is 422 naming the header, and creates nothing', async () => {
    const key = newKey()
    const body = newProduct()
    const first = await postWithKey(ctx, alice, key, body)
    assert.equal(first.statusCode, 201)
    const total = await countProducts(ctx)
    const others = [
      { ...body, price: body.price + 1 },
      { ...body, product_id: uniqueSku() },
      { ...body, description: undefined },
    ]
    for (const payload of others) {
      const response = await postWithKey(ctx, alice, key, JSON.parse(JSON.stringify(payload)))
      assertInvalid(response, 'header', 'idempotency-key')
    }
    assert.equal(await countProducts(ctx), total)
    // The key still answers its own request.
    const retry = await postWithKey(ctx, alice, key, body)
    assert.equal(retry.statusCode, 201)
    assert.equal(retry.json<Product>().id, first.json<Product>().id)
  })

  test('another key is another creation: the same body then collides (409), a new SKU creates', async () => {
    const body = newProduct()
    const keyA = newKey()
    const keyB = newKey()
    const first = await postWithKey(ctx, alice, keyA, body)
    assert.equal(first.statusCode, 201)
    // A retry of the first key replays even though its product_id is now taken.
    const replay = await postWithKey(ctx, alice, keyA, body)
    assert.equal(replay.statusCode, 201, replay.body)
    assert.equal(replay.headers['idempotent-replayed'], 'true')
    // Another key really creates: with this body, the SKU is taken.
    const collision = await postWithKey(ctx, alice, keyB, body)
    assertProblem(collision, 409)
    assert.equal(collision.headers['idempotent-replayed'], undefined)
    assert.equal(await countProducts(ctx, body.product_id), 1)
    const second = await postWithKey(ctx, alice, keyB, { ...body, product_id: uniqueSku() })
    assert.equal(second.statusCode, 201, second.body)
    assert.equal(second.headers['idempotent-replayed'], undefined)
    assert.notEqual(second.json<Product>().id, first.json<Product>().id)
  })

  test("keys are per user: another user's same key is a creation of their own", async () => {
    const key = newKey()
    const body = newProduct()
    const ofAlice = await postWithKey(ctx, alice, key, body)
    assert.equal(ofAlice.statusCode, 201)
    // Bob's key is not Alice's: no replay of her product (which holds that SKU).
    assertProblem(await postWithKey(ctx, bob, key, body), 409)
    const ofBob = await postWithKey(ctx, bob, key, { ...body, product_id: uniqueSku() })
    assert.equal(ofBob.statusCode, 201, ofBob.body)
    assert.equal(ofBob.headers['idempotent-replayed'], undefined)
    assert.equal(ofBob.json<Product>().owner_id, bob.id)
    assert.notEqual(ofBob.json<Product>().id, ofAlice.json<Product>().id)
    const again = await postWithKey(ctx, alice, key, body)
    assert.equal(again.headers['idempotent-replayed'], 'true')
    assert.deepEqual(again.json(), ofAlice.json())
    assert.equal((await rowOf(ctx, ofAlice.json<Product>().id))?.owner_id, alice.id)
  })

  test('an expired key can be used again, for any body', async () => {
    const key = newKey()
    const body = newProduct()
    const first = await postWithKey(ctx, alice, key, body)
    assert.equal(first.statusCode, 201)
    const expire = () =>
      ctx.app.db
        .updateTable('idempotency_keys')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('user_id', '=', alice.id)
        .where('idempotency_key', '=', key)
        .execute()

    // Expired, the same request is no longer replayed: it creates again (and finds its SKU taken).
    await expire()
    assertProblem(await postWithKey(ctx, alice, key, body), 409)
    assert.equal(
      await storedKey(ctx, alice.id, key),
      undefined,
      'the expired key is gone, and the 409 not kept',
    )

    const otherBody = newProduct()
    const created = await postWithKey(ctx, alice, key, otherBody)
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.headers['idempotent-replayed'], undefined)
    assert.notEqual(created.json<Product>().id, first.json<Product>().id)
    assert.ok((await storedKey(ctx, alice.id, key))!.expires_at.getTime() > Date.now(), 'a new lease')
    // The key now stands for the new request.
    const replay = await postWithKey(ctx, alice, key, otherBody)
    assert.equal(replay.headers['idempotent-replayed'], 'true')
    assert.equal(replay.json<Product>().id, created.json<Product>().id)
    assertInvalid(await postWithKey(ctx, alice, key, body), 'header', 'idempotency-key')
  })

  test('a key that is too long or not visible ASCII is 422 naming the header; 255 characters are fine', async () => {
    const total = await countProducts(ctx)
    for (const key of ['k'.repeat(256), 'has space', 'tab\there', ''])
      assertInvalid(await postWithKey(ctx, alice, key, newProduct()), 'header', 'idempotency-key')
    assert.equal(await countProducts(ctx), total, 'nothing was created')
    const longest = await postWithKey(ctx, alice, `${newKey()}-`.padEnd(255, 'k'), newProduct())
    assert.equal(longest.statusCode, 201, longest.body)
  })

  test('a refused creation is not kept: once the conflict is gone, a retry with the key creates', async () => {
    const holder = await createProduct(ctx, bob)
    const key = newKey()
    const body = newProduct({ product_id: holder.product_id })
    assertProblem(await postWithKey(ctx, alice, key, body), 409)
    assert.equal(await storedKey(ctx, alice.id, key), undefined, 'no trace of the key')
    assertProblem(await postWithKey(ctx, alice, key, body), 409)

    assert.equal((await write(ctx, bob, 'DELETE', holder.id, undefined)).statusCode, 204)
    const created = await postWithKey(ctx, alice, key, body)
    assert.equal(created.statusCode, 201, created.body)
    assert.equal(created.headers['idempotent-replayed'], undefined)
    assert.equal(created.json<Product>().owner_id, alice.id)
    const replay = await postWithKey(ctx, alice, key, body)
    assert.equal(replay.headers['idempotent-replayed'], 'true')
    assert.equal(replay.json<Product>().id, created.json<Product>().id)
    assert.equal(await countProducts(ctx, body.product_id), 1)
  })
})
