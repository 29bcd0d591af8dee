/** The product list: each sort order with keyset pagination, and pages while products are added between requests. */
import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  describeEachEngine,
  registerAndLogin,
  type ProductBody as Product,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  SORTS,
  type Sort,
  type SortColumn,
  secondsAfterBase,
  getPage,
  walk,
  createProduct,
  createProductAt,
  storedProducts,
  ids,
  compareFor,
  assertEachOnce,
} from './catalogue-support.js'

// ================================================================== 1. sort orders

/**
 * Ties in every column: names alpha (1, 3), charlie (2, 6), delta (0, 5); prices 300 (0, 2, 6),
 * 100 (1, 4); created_at +0 s (1, 6), +1 s (3, 5), +2 s (0, 2). Names are lower-case ASCII words,
 * which every collation orders alike.
 */
const SORT_FIXTURE = [
  { name: 'delta', price: 300, at: 2 },
  { name: 'alpha', price: 100, at: 0 },
  { name: 'charlie', price: 300, at: 2 },
  { name: 'alpha', price: 200, at: 1 },
  { name: 'bravo', price: 100, at: 3 },
  { name: 'delta', price: 50, at: 1 },
  { name: 'charlie', price: 300, at: 0 },
]

/** Written out by hand (indexes into SORT_FIXTURE, created in that order, so ids ascend with them). */
const EXPECTED_ORDER: Record<Sort, number[]> = {
  created_at: [1, 6, 3, 5, 0, 2, 4],
  '-created_at': [4, 2, 0, 5, 3, 6, 1],
  price: [5, 1, 4, 3, 0, 2, 6],
  '-price': [6, 2, 0, 3, 4, 1, 5],
  name: [1, 3, 4, 2, 6, 0, 5],
  '-name': [5, 0, 6, 2, 4, 3, 1],
}

describeEachEngine('catalogue: each sort order, on a database of its own', (ctx) => {
  let user: Actor
  let fixture: Product[]

  before(async () => {
    user = await registerAndLogin(ctx.app)
    fixture = []
    for (const { name, price, at } of SORT_FIXTURE)
      fixture.push(await createProductAt(ctx, user, secondsAfterBase(at), { name, price }))
  })

  test('the fixture is stored as created, with ids in creation order', async () => {
    const stored = await storedProducts(ctx)
    assert.deepEqual(stored, fixture)
    assert.deepEqual(
      ids(stored),
      [...ids(fixture)].sort((a, b) => a - b),
    )
  })

  for (const sort of SORTS) {
    test(`sort=${sort}: one page holds every product in the exact order, ids breaking ties`, async () => {
      const page = await getPage(ctx, user, { sort, limit: 100 })
      assert.deepEqual(
        ids(page.items),
        EXPECTED_ORDER[sort].map((index) => fixture[index]!.id),
      )
      assert.deepEqual(
        page.items,
        EXPECTED_ORDER[sort].map((index) => fixture[index]!),
      )
      assert.equal(page.next_cursor, null)
    })

    for (const limit of [1, 2, 3]) {
      test(`sort=${sort}, limit=${limit}: walking the pages serves each product once, in that order`, async () => {
        const seen = await walk(ctx, user, { sort, limit })
        assertEachOnce(seen, fixture, `sort=${sort} limit=${limit}`)
        assert.deepEqual(
          ids(seen),
          EXPECTED_ORDER[sort].map((index) => fixture[index]!.id),
        )
      })
    }
  }

  test('without sort the order is -created_at', async () => {
    const page = await getPage(ctx, user, { limit: 100 })
    assert.deepEqual(
      ids(page.items),
      EXPECTED_ORDER['-created_at'].map((index) => fixture[index]!.id),
    )
  })
})

// ================================================================== 2. inserts between pages

/** Ties again, so that positions inside a run of equal values are crossed by the pages. */
const WALK_FIXTURE = [
  { name: 'm1000', price: 1000, at: 0 },
  { name: 'm1010', price: 2000, at: 10 },
  { name: 'm1010', price: 2000, at: 10 },
  { name: 'm1020', price: 3000, at: 20 },
  { name: 'm1030', price: 4000, at: 30 },
  { name: 'm1030', price: 4000, at: 30 },
  { name: 'm1040', price: 5000, at: 40 },
  { name: 'm1050', price: 6000, at: 50 },
  { name: 'm1060', price: 7000, at: 60 },
]

/** The values just below, equal to, and just above a product's, in the sort column. */
function neighbours(column: SortColumn, product: Product): Record<string, unknown>[] {
  if (column === 'price')
    return [product.price - 1, product.price, product.price + 1].map((price) => ({ price }))
  if (column === 'name') {
    const n = Number(product.name.slice(1))
    return [n - 1, n, n + 1].map((value) => ({ name: `m${value}` }))
  }
  const at = Date.parse(product.created_at)
  return [at - 1000, at, at + 1000].map((time) => ({ created_at: new Date(time) }))
}

describeEachEngine('catalogue: pages while products are added between requests', (ctx) => {
  let user: Actor

  before(async () => {
    user = await registerAndLogin(ctx.app)
    for (const { name, price, at } of WALK_FIXTURE)
      await createProductAt(ctx, user, secondsAfterBase(at), { name, price })
  })

  for (const sort of ['-created_at', '-price', '-name', 'created_at', 'price', 'name'] as const) {
    test(`sort=${sort}: no product is skipped or served twice while others are inserted`, async () => {
      const column = (sort.startsWith('-') ? sort.slice(1) : sort) as SortColumn
      const compare = compareFor(sort)
      const atStart = await storedProducts(ctx)
      const insertedBehind: Product[] = []
      let insertedAhead = 0

      let boundaries = 0
      const seen = await walk(ctx, user, { sort, limit: 3 }, async (page) => {
        // Rows added behind the position lengthen the walk: add them at the first boundaries only.
        boundaries += 1
        if (boundaries > 3) return
        const last = page.items.at(-1)!
        // Below, at and above the position the next page starts from, and a brand new product.
        const inserts = [...neighbours(column, last), {}]
        for (const { created_at: createdAt, ...fields } of inserts) {
          const name = (fields.name as string | undefined) ?? `m${1000 + boundaries * 7}`
          const product =
            createdAt instanceof Date
              ? await createProductAt(ctx, user, createdAt, { price: 4500, ...fields, name })
              : await createProduct(ctx, user, { price: 4500, ...fields, name })
          // Keyset semantics: what sorts after the position is still to come; the rest was passed.
          if (compare(product, last) > 0) insertedBehind.push(product)
          else insertedAhead += 1
        }
      })

      assert.ok(insertedBehind.length > 0 && insertedAhead > 0, 'rows were added on both sides')
      assertEachOnce(seen, atStart, `sort=${sort}`)
      const expected = [...atStart, ...insertedBehind].sort(compare)
      assert.deepEqual(
        ids(seen),
        ids(expected),
        'every product that was there, and those added after the position, in order',
      )
      for (let i = 1; i < seen.length; i += 1)
        assert.ok(compare(seen[i - 1]!, seen[i]!) < 0, `${seen[i - 1]!.id} is served before ${seen[i]!.id}`)
    })
  }
})
