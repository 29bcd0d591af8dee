/** The product list's filters (text, prices, owner), alone and with each sort across pages; bad sorts, filters and cursors. */
import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { createCursorCodec } from '../../../src/services/pagination.js'
import {
  describeEachEngine,
  registerAndLogin,
  type ProductBody as Product,
  type TestActor as Actor,
} from '../../support/app.js'
import {
  type Query,
  SORTS,
  secondsAfterBase,
  listProducts,
  getPage,
  walk,
  createProductAt,
  storedProducts,
  ids,
  compareFor,
  assertInvalid,
  cursorPayload,
} from './catalogue-support.js'

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
