/** Truly concurrent requests over a listening server. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  describeEachEngine,
  registerAndLogin,
  type ProductBody as Product,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  getPage,
  newProduct,
  createProduct,
  rowOf,
  countProducts,
  etagOf,
  newKey,
} from './catalogue-support.js'

// ================================================================== 5. truly concurrent requests

describeEachEngine('catalogue: truly concurrent requests over a listening server', (ctx) => {
  let owner: Actor
  let baseUrl: string

  before(async () => {
    owner = await registerAndLogin(ctx.app)
    baseUrl = await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  })

  async function send(method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...owner.headers,
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
    return { status: response.status, headers: response.headers, body: (await response.json()) as unknown }
  }

  for (const writers of [2, 2, 2, 2, 2, 4, 4]) {
    test(`${writers} PATCHes at once with the same If-Match: exactly one wins, the others are 412`, async () => {
      const product = await createProduct(ctx, owner, { price: 1 })
      const etag = await etagOf(ctx, owner, product.id)
      const { version } = (await rowOf(ctx, product.id))!
      const changes = Array.from({ length: writers }, (_, i) => ({ price: 100 + i, name: `writer${i}` }))
      const responses = await Promise.all(
        changes.map((change) => send('PATCH', `/product/${product.id}`, { 'if-match': etag }, change)),
      )
      const winners = responses.filter((response) => response.status === 200)
      const losers = responses.filter((response) => response.status !== 200)
      assert.equal(winners.length, 1, `statuses: ${responses.map((r) => r.status).join(', ')}`)
      for (const loser of losers) {
        assert.equal(loser.status, 412)
        assert.match(String(loser.headers.get('content-type')), /^application\/problem\+json/)
      }
      const winner = winners[0]!
      const won = winner.body as Product
      const stored = (await rowOf(ctx, product.id))!
      assert.equal(stored.price, won.price, "the stored row is the winner's change")
      assert.equal(stored.name, won.name)
      assert.equal(stored.version, version + 1, 'changed exactly once')
      const current = await etagOf(ctx, owner, product.id)
      assert.equal(winner.headers.get('etag'), current)
      for (const loser of losers)
        assert.equal(loser.headers.get('etag'), current, 'a 412 names the current ETag')
    })
  }

  test('PATCHes of different fields at once, without If-Match: both are kept, and q finds the new name', async () => {
    for (let round = 0; round < 8; round += 1) {
      const product = await createProduct(ctx, owner, { name: 'oldname', price: 1 })
      const name = `renamed${round}x${product.id}`
      const responses = await Promise.all([
        send('PATCH', `/product/${product.id}`, {}, { name }),
        send('PATCH', `/product/${product.id}`, {}, { price: 2 }),
        send('PATCH', `/product/${product.id}`, {}, { description: 'redescribed' }),
      ])
      assert.deepEqual(
        responses.map((response) => response.status),
        [200, 200, 200],
      )
      const stored = (await rowOf(ctx, product.id))!
      assert.deepEqual([stored.name, stored.price, stored.description], [name, 2, 'redescribed'])
      // The searchable text follows every change, whichever request wrote last.
      for (const q of [name, 'redescribed']) {
        const found = await getPage(ctx, owner, { q, owner_id: owner.id })
        assert.ok(
          found.items.some((item) => item.id === product.id),
          `round ${round}: q=${q} finds the product`,
        )
      }
      assert.equal(
        (await getPage(ctx, owner, { q: 'oldname', owner_id: owner.id })).items.some(
          (item) => item.id === product.id,
        ),
        false,
        `round ${round}: the old name is no longer found`,
      )
    }
  })

  for (const round of [1, 2, 3]) {
    test(`8 POSTs at once with one Idempotency-Key create one product (round ${round})`, async () => {
      const key = newKey()
      const body = newProduct()
      const responses = await Promise.all(
        Array.from({ length: 8 }, () => send('POST', '/product/', { 'idempotency-key': key }, body)),
      )
      const created = responses.filter((response) => response.status === 201)
      for (const response of responses.filter((r) => r.status !== 201)) {
        assert.equal(response.status, 409, JSON.stringify(response.body))
        assert.match((response.body as { detail: string }).detail, /still being processed/)
      }
      assert.ok(created.length >= 1)
      const productIds = new Set(created.map((response) => (response.body as Product).id))
      assert.equal(productIds.size, 1, 'every 201 names the same product')
      assert.equal(
        created.filter((response) => response.headers.get('idempotent-replayed') !== 'true').length,
        1,
        'exactly one request created; the other 201s are replays',
      )
      assert.equal(await countProducts(ctx, body.product_id), 1)
      const [id] = productIds
      assert.equal((await rowOf(ctx, id!))?.owner_id, owner.id)
    })
  }
})
