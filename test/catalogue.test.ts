// The catalogue at scale (issue 5): sort orders and keyset pagination, filters, ETag/If-Match,
// Idempotency-Key, truly concurrent writes, and multi-row changes that are all or nothing.
// What a client sees is checked against what is left in the database.
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { createCursorCodec } from '../src/services/pagination.js'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  registerAndLogin,
  uniqueSku,
  type EngineContext,
  type ProductBody as Product,
  type ProductPage as Page,
  type TestActor as Actor,
} from './support/app.js'

type Query = Record<string, string | number | undefined>

const SORTS = ['created_at', '-created_at', 'price', '-price', 'name', '-name'] as const
type Sort = (typeof SORTS)[number]
type SortColumn = 'created_at' | 'price' | 'name'

/** A fixed moment in the past; fixtures place their created_at relative to it. */
const BASE = Date.parse('2024-03-04T05:06:07.000Z')
const secondsAfterBase = (seconds: number) => new Date(BASE + seconds * 1000)

// ------------------------------------------------------------------ requests

function productsUrl(query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const search = params.toString()
  return search ? `/product/?${search}` : '/product/'
}

function listProducts(ctx: EngineContext, actor: Actor, query: Query = {}) {
  return ctx.app.inject({ method: 'GET', url: productsUrl(query), headers: actor.headers })
}

async function getPage(ctx: EngineContext, actor: Actor, query: Query = {}): Promise<Page> {
  const response = await listProducts(ctx, actor, query)
  assert.equal(response.statusCode, 200, response.body)
  return response.json<Page>()
}

/**
 * Walks every page of GET /product/ with the given query and returns the items in the order they
 * were served. `between` runs after every page that has a next one, before it is requested.
 */
async function walk(
  ctx: EngineContext,
  actor: Actor,
  query: Query,
  between?: (page: Page) => Promise<void>,
): Promise<Product[]> {
  const limit = Number(query.limit ?? 20)
  const seen: Product[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page = await getPage(ctx, actor, { ...query, cursor: cursor ?? undefined })
    assert.ok(page.items.length <= limit, 'a page never holds more than the limit')
    if (page.next_cursor !== null) assert.equal(page.items.length, limit, 'only the last page is short')
    if (pages > 0) assert.ok(page.items.length > 0, 'a cursor never leads to an empty page here')
    seen.push(...page.items)
    cursor = page.next_cursor
    pages += 1
    assert.ok(pages <= 500, 'the pages come to an end')
    if (cursor !== null && between) await between(page)
  } while (cursor !== null)
  return seen
}

const newProduct = (overrides: Record<string, unknown> = {}) => ({
  product_id: uniqueSku(),
  name: 'keyboard',
  description: 'tenkeyless',
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

/** Creates a product and moves its created_at to the given moment (as an import would). */
async function createProductAt(
  ctx: EngineContext,
  actor: Actor,
  createdAt: Date,
  overrides: Record<string, unknown> = {},
): Promise<Product> {
  const product = await createProduct(ctx, actor, overrides)
  await ctx.app.db
    .updateTable('products')
    .set({ created_at: createdAt })
    .where('id', '=', product.id)
    .execute()
  return { ...product, created_at: createdAt.toISOString() }
}

// ------------------------------------------------------------------ the database

const STORED_COLUMNS = [
  'id',
  'product_id',
  'name',
  'description',
  'price',
  'owner_id',
  'version',
  'created_at',
  'updated_at',
] as const

const rowOf = (ctx: EngineContext, id: number) =>
  ctx.app.db.selectFrom('products').select(STORED_COLUMNS).where('id', '=', id).executeTakeFirst()

async function countProducts(ctx: EngineContext, sku?: string): Promise<number> {
  const row = await ctx.app.db
    .selectFrom('products')
    .select((eb) => eb.fn.countAll().as('n'))
    .$if(sku !== undefined, (qb) => qb.where('product_id', '=', sku!))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Every product in the database, as the API shows it. */
async function storedProducts(ctx: EngineContext): Promise<Product[]> {
  const rows = await ctx.app.db.selectFrom('products').select(STORED_COLUMNS).orderBy('id').execute()
  return rows.map(({ version: _version, ...row }) => ({
    ...row,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }))
}

// ------------------------------------------------------------------ expectations

const ids = (products: readonly Product[]) => products.map((product) => product.id)

function sortValue(product: Product, column: SortColumn): number | string {
  if (column === 'created_at') return Date.parse(product.created_at)
  return column === 'price' ? product.price : product.name
}

/** The order a sort promises: the column, then the id, both in the sort's direction. */
function compareFor(sort: Sort) {
  const descending = sort.startsWith('-')
  const column = (descending ? sort.slice(1) : sort) as SortColumn
  return (a: Product, b: Product): number => {
    const x = sortValue(a, column)
    const y = sortValue(b, column)
    const order = x < y ? -1 : x > y ? 1 : a.id - b.id
    return descending ? -order : order
  }
}

/** Asserts that every id occurs exactly once in `seen`, and names those that do not. */
function assertEachOnce(seen: readonly Product[], expected: readonly Product[], label: string) {
  const counts = new Map<number, number>()
  for (const product of seen) counts.set(product.id, (counts.get(product.id) ?? 0) + 1)
  const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id)
  const missing = expected.filter((product) => !counts.has(product.id)).map((product) => product.id)
  assert.deepEqual(repeated, [], `${label}: products served twice`)
  assert.deepEqual(missing, [], `${label}: products skipped`)
}

/** A 422 problem whose `errors` name the given field in the given part of the request. */
function assertInvalid(response: LightMyRequestResponse, where: 'body' | 'query' | 'header', field: string) {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors) && problem.errors.length > 0, 'a 422 lists its errors')
  assert.ok(
    problem.errors.some((issue) => issue.in === where && issue.field === field),
    `expected an error for ${where} field "${field}", got ${JSON.stringify(problem.errors)}`,
  )
  return problem
}

/** Decodes a cursor's payload (it is opaque to clients, but tests may look inside). */
function cursorPayload(cursor: string): Record<string, unknown> {
  const [payload] = cursor.split('.') as [string]
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
}

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

// ================================================================== 3. filters

/**
 * Names are lower-case ASCII words (any collation orders them alike); text to search is in the
 * descriptions and SKUs. Grid products belong to alice and bob, text products to carol.
 */
const GRID = [
  { name: 'apple', price: 100, at: 0, description: 'plain' },
  { name: 'banana', price: 200, at: 1, description: 'has FindMe inside' },
  { name: 'cherry', price: 200, at: 1, description: 'plain' },
  { name: 'apple', price: 300, at: 2, description: 'findme too' },
  { name: 'banana', price: 400, at: 3, description: 'plain' },
  { name: 'cherry', price: 400, at: 3, description: 'FINDME' },
  { name: 'apple', price: 500, at: 4, description: 'plain' },
  { name: 'banana', price: 200, at: 5, description: 'xfindmex' },
  { name: 'cherry', price: 300, at: 6, description: 'plain' },
  { name: 'apple', price: 200, at: 6, description: 'findme' },
  { name: 'banana', price: 100, at: 7, description: 'plain' },
  { name: 'cherry', price: 600, at: 8, description: 'find me not' },
]

const TEXT = {
  sku: { product_id: 'Sku.Zeta-42', name: 'zeta', description: 'plain' },
  keyboard: { name: 'keyboard', description: 'a board' },
  unicode: { name: 'creme', description: 'Crème ünï brûlée' },
  percent: { name: 'cotton', description: '100% cotton' },
  notPercent: { name: 'threads', description: '100 percent cotton, 1000 threads' },
  underscore: { name: 'snake', description: 'snake_case' },
  notUnderscore: { name: 'snakes', description: 'snakescase' },
  bang: { name: 'wow', description: 'wow!% really' },
  notBang: { name: 'wowed', description: 'wow really' },
} as const

describeEachEngine('catalogue: filters, on a database of its own', (ctx) => {
  let alice: Actor
  let bob: Actor
  let carol: Actor
  let all: Product[]
  const text = {} as Record<keyof typeof TEXT, Product>

  before(async () => {
    alice = await registerAndLogin(ctx.app)
    bob = await registerAndLogin(ctx.app)
    carol = await registerAndLogin(ctx.app)
    for (const [index, { at, ...fields }] of GRID.entries())
      await createProductAt(ctx, index % 2 === 0 ? alice : bob, secondsAfterBase(at), {
        product_id: `g-${index}`,
        ...fields,
      })
    // SKUs of digits and "-" only, so that no search below finds one by chance.
    let n = 0
    for (const [key, fields] of Object.entries(TEXT)) {
      n += 1
      text[key as keyof typeof TEXT] = await createProductAt(ctx, carol, secondsAfterBase(10), {
        product_id: `t-${n}`,
        price: 1000 + n * 100,
        ...fields,
      })
    }
    all = await storedProducts(ctx)
  })

  /** The ids `q` finds, in id order (q results come newest first; these share a created_at). */
  async function found(q: string): Promise<number[]> {
    const page = await getPage(ctx, alice, { q, limit: 100 })
    return ids(page.items).sort((a, b) => a - b)
  }

  describe('q', () => {
    test('finds text in the product_id, the name or the description, whatever its case', async () => {
      assert.deepEqual(await found('zeta-4'), [text.sku.id], 'product_id, in lower case')
      assert.deepEqual(await found('SKU.ZETA'), [text.sku.id], 'product_id, in upper case')
      assert.deepEqual(await found('KEYB'), [text.keyboard.id], 'name')
      assert.deepEqual(await found('BRÛLÉE'), [text.unicode.id], 'description')
      const findme = all.filter((product) => product.description.toLowerCase().includes('findme'))
      assert.equal(findme.length, 5)
      assert.deepEqual(await found('fInDmE'), ids(findme), 'mixed case')
    })

    test('compares Unicode text case-insensitively and in one normal form', async () => {
      assert.deepEqual(await found('ÜNÏ'), [text.unicode.id])
      assert.deepEqual(await found('ünï'), [text.unicode.id])
      assert.deepEqual(await found('CRÈME'), [text.unicode.id])
      // "u" followed by a combining diaeresis is the same text as "ü".
      assert.deepEqual(await found('U\u0308NI\u0308'), [text.unicode.id])
      assert.deepEqual(await found('une'), [], 'ü is not u')
    })

    test('takes LIKE wildcards and the escape character literally', async () => {
      assert.deepEqual(await found('100%'), [text.percent.id])
      assert.deepEqual(
        await found('%'),
        [text.percent.id, text.bang.id].sort((a, b) => a - b),
      )
      assert.deepEqual(await found('e_c'), [text.underscore.id])
      assert.deepEqual(await found('_'), [text.underscore.id])
      assert.deepEqual(await found('!'), [text.bang.id])
      assert.deepEqual(await found('w!'), [text.bang.id])
      assert.deepEqual(await found('!%'), [text.bang.id])
      assert.deepEqual(await found('!!'), [])
      assert.deepEqual(await found('wow!%'), [text.bang.id])
      assert.deepEqual(await found('%%'), [])
      assert.deepEqual(await found('!_'), [])
    })

    test('text that nothing contains finds nothing: an empty page without a cursor', async () => {
      assert.deepEqual(await getPage(ctx, alice, { q: 'no such words' }), { items: [], next_cursor: null })
    })

    test('is at most 100 characters, and at least one: otherwise 422 naming "q"', async () => {
      assert.equal((await listProducts(ctx, alice, { q: 'x'.repeat(100) })).statusCode, 200)
      assert.equal((await listProducts(ctx, alice, { q: 'ü'.repeat(100) })).statusCode, 200)
      assertInvalid(await listProducts(ctx, alice, { q: 'x'.repeat(101) }), 'query', 'q')
      assertInvalid(await listProducts(ctx, alice, { q: '' }), 'query', 'q')
    })
  })

  describe('prices and owner', () => {
    test('min_price and max_price are inclusive bounds', async () => {
      const prices = async (query: Query) =>
        (await walk(ctx, alice, { ...query, limit: 100 })).map((p) => p.price)
      const at200 = all.filter((product) => product.price === 200).length
      assert.equal(at200, 4)
      assert.deepEqual(await prices({ min_price: 200, max_price: 200 }), Array<number>(at200).fill(200))
      assert.deepEqual(
        (await prices({ min_price: 200, max_price: 300, sort: 'price' })).filter((p) => p === 200).length,
        at200,
      )
      assert.ok((await prices({ min_price: 500 })).every((price) => price >= 500))
      assert.ok((await prices({ min_price: 500 })).includes(500), 'min_price itself is included')
      assert.ok((await prices({ max_price: 100 })).every((price) => price <= 100))
      assert.equal((await prices({ max_price: 100 })).length, 2, 'max_price itself is included')
      assert.deepEqual(await prices({ min_price: 0, max_price: 99 }), [])
    })

    test("owner_id lists one owner's products; an owner without products has none", async () => {
      const ofCarol = await walk(ctx, alice, { owner_id: carol.id, limit: 4 })
      assert.deepEqual(
        ids(ofCarol).sort((a, b) => a - b),
        Object.values(text)
          .map((product) => product.id)
          .sort((a, b) => a - b),
      )
      const nobody = await registerAndLogin(ctx.app)
      assert.deepEqual(await getPage(ctx, alice, { owner_id: nobody.id }), { items: [], next_cursor: null })
      assert.deepEqual(await getPage(ctx, alice, { owner_id: 2_147_483_647 }), {
        items: [],
        next_cursor: null,
      })
    })

    test('min_price above max_price is 422 naming "min_price"', async () => {
      assertInvalid(await listProducts(ctx, alice, { min_price: 301, max_price: 300 }), 'query', 'min_price')
    })

    for (const [field, value] of [
      ['min_price', -1],
      ['max_price', 'cheap'],
      ['max_price', '1.5'],
      ['owner_id', 0],
      ['owner_id', 'me'],
    ] as const) {
      test(`${field}=${value} is 422 naming "${field}"`, async () => {
        assertInvalid(await listProducts(ctx, alice, { [field]: value }), 'query', field)
      })
    }
  })

  describe('combined with each sort, across pages', () => {
    const FILTERS: { label: string; query: () => Query; keep: (product: Product) => boolean }[] = [
      {
        label: 'q',
        query: () => ({ q: 'findme' }),
        keep: (p) => p.description.toLowerCase().includes('findme'),
      },
      { label: 'min_price', query: () => ({ min_price: 300 }), keep: (p) => p.price >= 300 },
      { label: 'max_price', query: () => ({ max_price: 300 }), keep: (p) => p.price <= 300 },
      {
        label: 'min_price and max_price',
        query: () => ({ min_price: 200, max_price: 400 }),
        keep: (p) => p.price >= 200 && p.price <= 400,
      },
      { label: 'owner_id', query: () => ({ owner_id: alice.id }), keep: (p) => p.owner_id === alice.id },
      {
        label: 'owner_id and min_price',
        query: () => ({ owner_id: bob.id, min_price: 300 }),
        keep: (p) => p.owner_id === bob.id && p.price >= 300,
      },
      {
        label: 'q, owner_id and max_price',
        query: () => ({ q: 'FINDME', owner_id: bob.id, max_price: 400 }),
        keep: (p) =>
          p.description.toLowerCase().includes('findme') && p.owner_id === bob.id && p.price <= 400,
      },
      {
        label: 'every filter',
        query: () => ({ q: 'e', owner_id: alice.id, min_price: 200, max_price: 500 }),
        keep: (p) =>
          `${p.product_id}\n${p.name}\n${p.description}`.toLowerCase().includes('e') &&
          p.owner_id === alice.id &&
          p.price >= 200 &&
          p.price <= 500,
      },
    ]

    for (const sort of SORTS)
      for (const filter of FILTERS)
        test(`sort=${sort} with ${filter.label}: exactly the matching products, in order, over pages of 2`, async () => {
          const expected = all.filter(filter.keep).sort(compareFor(sort))
          assert.ok(expected.length >= 3, 'the filter keeps more than one page')
          assert.ok(expected.length < all.length, 'the filter leaves some out')
          const seen = await walk(ctx, alice, { ...filter.query(), sort, limit: 2 })
          assert.deepEqual(ids(seen), ids(expected))
        })
  })

  describe('bad sort, unknown filters and cursors', () => {
    for (const sort of [
      '-owner_id',
      'owner_id',
      'price,name',
      'id',
      '-id',
      'PRICE',
      '+price',
      '--price',
      ' price',
      '',
    ])
      test(`sort=${JSON.stringify(sort)} is 422 naming "sort"`, async () => {
        assertInvalid(await listProducts(ctx, alice, { sort }), 'query', 'sort')
      })

    for (const parameter of ['category', 'owner', 'price', 'search', 'offset', 'page'])
      test(`the unknown filter "${parameter}" is 422 naming it`, async () => {
        assertInvalid(await listProducts(ctx, alice, { [parameter]: '1' }), 'query', parameter)
      })

    test('a cursor only continues the list it came from: another sort or other filters are 422', async () => {
      const origin = { sort: 'price', min_price: 200, q: 'e', limit: 2 }
      const first = await getPage(ctx, alice, origin)
      assert.ok(first.next_cursor, 'there is a second page')
      const cursor = first.next_cursor
      const others: Query[] = [
        { ...origin, sort: '-price' },
        { ...origin, sort: 'name' },
        { ...origin, sort: undefined },
        { ...origin, min_price: 201 },
        { ...origin, min_price: undefined },
        { ...origin, max_price: 10_000 },
        { ...origin, q: 'ee' },
        { ...origin, q: undefined },
        { ...origin, owner_id: alice.id },
      ]
      for (const query of others)
        assertInvalid(await listProducts(ctx, alice, { ...query, cursor }), 'query', 'cursor')
      // The same list goes on, whatever the page size.
      const second = await getPage(ctx, alice, { ...origin, limit: 3, cursor })
      assert.ok(second.items.length > 0)
      assert.ok(second.items.every((product) => product.price >= first.items.at(-1)!.price))
    })

    test('a cursor whose position was changed is 422, signed or not', async () => {
      const first = await getPage(ctx, alice, { sort: '-price', q: 'findme', limit: 2 })
      const cursor = first.next_cursor!
      const [, signature] = cursor.split('.') as [string, string]
      const position = cursorPayload(cursor)
      assert.equal(position.v, first.items.at(-1)!.price, 'the cursor holds the last price')
      // Jumping ahead by rewriting the position, with the original signature.
      const moved = Buffer.from(JSON.stringify({ ...position, v: 1 })).toString('base64url')
      assertInvalid(
        await listProducts(ctx, alice, {
          sort: '-price',
          q: 'findme',
          limit: 2,
          cursor: `${moved}.${signature}`,
        }),
        'query',
        'cursor',
      )
      // Positions of the wrong type for the sort, even when signed with the server's own key.
      const codec = createCursorCodec(`${ctx.config.secretKey}:products`)
      const wrongTyped = [
        { ...position, v: '1000' },
        { ...position, v: null },
        { ...position, i: String(position.i) },
        { ...position, v: undefined },
      ]
      for (const forged of wrongTyped)
        assertInvalid(
          await listProducts(ctx, alice, {
            sort: '-price',
            q: 'findme',
            limit: 2,
            cursor: codec.encode(forged),
          }),
          'query',
          'cursor',
        )
      const byName = (await getPage(ctx, alice, { sort: 'name', limit: 2 })).next_cursor!
      const namePosition = cursorPayload(byName)
      assertInvalid(
        await listProducts(ctx, alice, {
          sort: 'name',
          limit: 2,
          cursor: codec.encode({ ...namePosition, v: 5 }),
        }),
        'query',
        'cursor',
      )
      // The genuine cursors still work.
      assert.equal(
        (await listProducts(ctx, alice, { sort: '-price', q: 'findme', limit: 2, cursor })).statusCode,
        200,
      )
      assert.equal(
        (await listProducts(ctx, alice, { sort: 'name', limit: 2, cursor: byName })).statusCode,
        200,
      )
    })
  })
})

// ================================================================== 4. ETag and If-Match

async function getProduct(
  ctx: EngineContext,
  actor: Actor,
  id: number,
  headers: Record<string, string> = {},
) {
  return ctx.app.inject({ method: 'GET', url: `/product/${id}`, headers: { ...actor.headers, ...headers } })
}

async function etagOf(ctx: EngineContext, actor: Actor, id: number): Promise<string> {
  const response = await getProduct(ctx, actor, id)
  assert.equal(response.statusCode, 200, response.body)
  const etag = response.headers.etag
  assert.equal(typeof etag, 'string')
  return etag as string
}

function write(
  ctx: EngineContext,
  actor: Actor,
  method: 'PUT' | 'PATCH' | 'DELETE',
  id: number,
  ifMatch: string | undefined,
  payload?: Record<string, unknown>,
) {
  return ctx.app.inject({
    method,
    url: `/product/${id}`,
    headers: { ...actor.headers, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    ...(payload === undefined ? {} : { payload }),
  })
}

/** A body for each method that changes something visible. */
function changeFor(method: 'PUT' | 'PATCH', product: Product, price: number): Record<string, unknown> {
  return method === 'PUT'
    ? { product_id: product.product_id, name: `${product.name} replaced`, price }
    : { price }
}

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

// ================================================================== 6. Idempotency-Key

function postWithKey(ctx: EngineContext, actor: Actor, key: string, payload: unknown) {
  return ctx.app.inject({
    method: 'POST',
    url: '/product/',
    headers: { ...actor.headers, 'idempotency-key': key },
    payload: payload as Record<string, unknown>,
  })
}

const storedKey = (ctx: EngineContext, userId: number, key: string) =>
  ctx.app.db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst()

let keyCounter = 0
const newKey = () =>
  `key-${Date.now().toString(36)}-${(keyCounter += 1)}-${Math.random().toString(36).slice(2)}`

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

// ================================================================== 7. all or nothing

/** A table of the test's own whose rows keep a user from being deleted (a foreign key, no cascade). */
type BlockerTable = Record<'catalogue_blocker', { user_id: number }>

describeEachEngine('catalogue: a multi-row change that fails half-way leaves nothing half-done', (ctx) => {
  const blockers = () => ctx.app.db.withTables<BlockerTable>()

  before(async () => {
    await blockers()
      .schema.createTable('catalogue_blocker')
      .addColumn('user_id', 'integer', (col) => col.notNull())
      .addForeignKeyConstraint('catalogue_blocker_user_fk', ['user_id'], 'users', ['id'])
      .execute()
  })

  const activeSessions = async (userId: number) =>
    (
      await ctx.app.db
        .selectFrom('sessions')
        .select('id')
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute()
    ).length

  const userExists = async (userId: number) =>
    (await ctx.app.db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst()) !==
    undefined

  const me = (token: string) => ctx.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })

  const deleteUser = (user: Actor) =>
    ctx.app.inject({ method: 'DELETE', url: `/users/${user.id}`, headers: user.headers })

  /**
   * A user whose deletion fails at its last step: the sessions are ended (in the transaction), then
   * deleting the user row breaks a foreign key.
   */
  async function blockedUser() {
    const user = await registerAndLogin(ctx.app)
    const otherToken = await login(ctx.app, user.email, user.password)
    const products = [await createProduct(ctx, user), await createProduct(ctx, user)]
    await blockers().insertInto('catalogue_blocker').values({ user_id: user.id }).execute()
    const unblock = () => blockers().deleteFrom('catalogue_blocker').where('user_id', '=', user.id).execute()
    return { user, otherToken, products, unblock }
  }

  test('deleting a user fails at its last step: user, sessions and products stay; then it works', async () => {
    const { user, otherToken, products, unblock } = await blockedUser()
    const admin = await adminAndLogin(ctx.app)
    assert.equal(await activeSessions(user.id), 2)

    const failed = await deleteUser(user)
    assertProblem(failed, 500)
    assert.doesNotMatch(
      failed.body,
      /catalogue_blocker|foreign|constraint/i,
      'nothing internal reaches the client',
    )
    assert.ok(await userExists(user.id), 'the user still exists')
    assert.equal(await activeSessions(user.id), 2, 'their sessions are still active')
    for (const product of products) assert.equal((await rowOf(ctx, product.id))?.owner_id, user.id)

    await unblock()
    // By an admin (the user's own token is the subject of the next test).
    const deleted = await deleteUser({ id: user.id, headers: admin.headers })
    assert.equal(deleted.statusCode, 204, deleted.body)
    assert.equal(await userExists(user.id), false)
    assert.equal(await activeSessions(user.id), 0)
    for (const product of products) assert.equal((await rowOf(ctx, product.id))?.owner_id, null)
    assert.equal((await me(otherToken)).statusCode, 401)
  })

  test("after a deletion that failed, the user's access tokens still work", async () => {
    const { user, otherToken, unblock } = await blockedUser()
    assertProblem(await deleteUser(user), 500)
    // Nothing was ended: the sessions are active in the database, so their tokens must be accepted.
    assert.equal(await activeSessions(user.id), 2)
    assert.equal((await me(user.token)).statusCode, 200, 'the token of the request that failed')
    assert.equal((await me(otherToken)).statusCode, 200, 'the token of another session')
    await unblock()
  })

  test('changing a password fails after ending the other sessions: password and sessions stay; then it works', async () => {
    const user = await registerAndLogin(ctx.app)
    const otherToken = await login(ctx.app, user.email, user.password)
    const newPassword = 'an entirely new passphrase 42'
    const storedHash = async () =>
      (
        await ctx.app.db
          .selectFrom('users')
          .select('password_hash')
          .where('id', '=', user.id)
          .executeTakeFirstOrThrow()
      ).password_hash
    const hashBefore = await storedHash()
    const change = () =>
      ctx.app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: user.headers,
        payload: { current_password: user.password, new_password: newPassword },
      })
    const tryLogin = (password: string) =>
      ctx.app.inject({ method: 'POST', url: '/login', payload: { username: user.email, password } })

    // The other sessions are marked ended in the database, then the request fails.
    const sessions = ctx.app.sessions
    const endAllSessionsOf = sessions.endAllSessionsOf
    let calls = 0
    sessions.endAllSessionsOf = async (repos, userId, reason, keep) => {
      calls += 1
      const ids = (await repos.sessions.activeIds(userId)).filter((id) => id !== keep)
      assert.equal(ids.length, 1)
      await repos.sessions.revoke(ids, reason, new Date())
      throw new Error('failure after the sessions were revoked')
    }
    let failed: LightMyRequestResponse
    try {
      failed = await change()
    } finally {
      sessions.endAllSessionsOf = endAllSessionsOf
    }
    assert.equal(calls, 1, 'the failure happened where intended')
    assertProblem(failed, 500)
    assert.equal(await storedHash(), hashBefore, 'the password did not change')
    assert.equal(await activeSessions(user.id), 2, 'no session was ended')
    assert.equal((await me(otherToken)).statusCode, 200)
    assert.equal((await tryLogin(newPassword)).statusCode, 401)
    assert.equal((await tryLogin(user.password)).statusCode, 200)

    const changed = await change()
    assert.equal(changed.statusCode, 204, changed.body)
    assert.notEqual(await storedHash(), hashBefore)
    assert.equal((await tryLogin(newPassword)).statusCode, 200)
    assert.equal((await tryLogin(user.password)).statusCode, 401)
    assert.equal((await me(otherToken)).statusCode, 401, 'the other session ended')
    assert.equal((await me(user.token)).statusCode, 200, 'this session goes on')
  })
})
