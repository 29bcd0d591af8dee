/** The products repository against each engine: reads, versioned writes, filters and keyset pages. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { NewProductRow } from '../../src/db/database.js'
import type { Repositories } from '../../src/repositories/index.js'
import {
  productSearchText,
  type ProductListOptions,
  type ProductRecord,
  type ProductSortColumn,
} from '../../src/repositories/products.js'
import { describeEachEngine, uniqueSku } from '../support/app.js'
import { at, insertPlainUser, barrier } from './support.js'

type NewProduct = Omit<NewProductRow, 'search_text' | 'version'>

async function insertProduct(
  repos: Repositories,
  overrides: Partial<NewProduct> = {},
): Promise<ProductRecord> {
  const row = {
    product_id: uniqueSku(),
    name: 'Lamp',
    description: 'A lamp',
    price: 100,
    owner_id: null,
    created_at: at(-60),
    updated_at: at(-30),
    ...overrides,
  }
  return { ...row, id: (await repos.products.insert(row)).id, version: 1 }
}

/**
 * Resolves once `parties` callers have arrived: two transactions that both wait here have both
 * begun before either goes on. (Not on SQLite, which runs one transaction at a time.)
 */

describeEachEngine('products repository', (ctx) => {
  const products = () => ctx.app.repos.products
  const searchTextOf = async (id: number) =>
    (await ctx.app.db.selectFrom('products').select('search_text').where('id', '=', id).executeTakeFirst())
      ?.search_text

  test('insert stores version 1 and the search text; findById reads exactly that product', async () => {
    const owner = await insertPlainUser(ctx.app.repos)
    const first = await insertProduct(ctx.app.repos, {
      name: 'Ｂig Lamp',
      description: 'Brass',
      owner_id: owner,
    })
    const second = await insertProduct(ctx.app.repos, { price: 7 })
    assert.ok(second.id > first.id)
    assert.deepEqual(await products().findById(first.id), first)
    assert.deepEqual(await products().findById(second.id), second)
    assert.equal(await products().findById(second.id + 1000), undefined)
    assert.equal(await searchTextOf(first.id), `${first.product_id.toLowerCase()}\nbig lamp\nbrass`)
    assert.equal(await searchTextOf(first.id), productSearchText(first))
  })

  test('insert answers the row as stored, outside a transaction and inside one', async () => {
    const row = (name: string) => ({
      product_id: uniqueSku(),
      name,
      description: '',
      price: 125,
      owner_id: null,
      created_at: at(-10),
      updated_at: at(-5),
    })
    const alone = row('Alone')
    const answered = await products().insert(alone)
    assert.deepEqual(answered, { ...alone, id: answered.id, version: 1 })
    assert.deepEqual(await products().findById(answered.id), answered)
    const inside = row('Inside')
    const [inTransaction, readBack] = await ctx.app.transaction(async (repos) => {
      const stored = await repos.products.insert(inside)
      return [stored, await repos.products.findById(stored.id)]
    })
    assert.deepEqual(inTransaction, { ...inside, id: inTransaction.id, version: 1 })
    assert.deepEqual(readBack, inTransaction)
    assert.deepEqual(await products().findById(inTransaction.id), inTransaction)
  })

  test('findByIdForUpdate reads the same product, in a transaction and outside one', async () => {
    const first = await insertProduct(ctx.app.repos)
    const gone = await insertProduct(ctx.app.repos)
    const second = await insertProduct(ctx.app.repos)
    await products().delete(gone.id)
    assert.deepEqual(await products().findByIdForUpdate(first.id), first)
    assert.equal(await products().findByIdForUpdate(gone.id), undefined)
    assert.equal(await products().findById(gone.id), undefined)
    const read = await ctx.app.transaction(async (repos) => [
      await repos.products.findByIdForUpdate(second.id),
      await repos.products.findByIdForUpdate(gone.id),
    ])
    assert.deepEqual(read, [second, undefined])
  })

  test('update applies the changes, increments the version and rewrites the search text', async () => {
    const product = await insertProduct(ctx.app.repos, { description: 'Old words' })
    const other = await insertProduct(ctx.app.repos)
    const changes = { name: 'Desk Lamp', price: 250, updated_at: at(10) }
    assert.equal(await products().update(product.id, changes, product), true)
    const changed = { ...product, ...changes, version: 2 }
    assert.deepEqual(await products().findById(product.id), changed)
    assert.equal(await searchTextOf(product.id), `${product.product_id.toLowerCase()}\ndesk lamp\nold words`)
    assert.deepEqual(await products().findById(other.id), other)
    assert.equal(await searchTextOf(other.id), productSearchText(other))

    // With an expected version: only while the row still has it.
    assert.equal(await products().update(product.id, { price: 1 }, changed, 1), false)
    assert.deepEqual(await products().findById(product.id), changed)
    assert.equal(await products().update(product.id, { description: 'New' }, changed, 2), true)
    assert.deepEqual(await products().findById(product.id), { ...changed, description: 'New', version: 3 })
    assert.equal(await products().update(other.id + 1000, { price: 1 }, other), false)
    assert.equal(await products().update(other.id + 1000, { price: 1 }, other, 1), false)
  })

  test('delete removes that product; with an expected version, only while the row has it', async () => {
    const product = await insertProduct(ctx.app.repos)
    const other = await insertProduct(ctx.app.repos)
    assert.equal(await products().delete(product.id, 2), false)
    assert.deepEqual(await products().findById(product.id), product)
    assert.equal(await products().delete(product.id, 1), true)
    assert.equal(await products().findById(product.id), undefined)
    assert.equal(await products().delete(product.id), false)
    assert.deepEqual(await products().findById(other.id), other)
    assert.equal(await products().delete(other.id), true)
    assert.equal(await products().findById(other.id), undefined)
  })

  test('two concurrent read-then-update changes through findByIdForUpdate both apply, in turn', async () => {
    const product = await insertProduct(ctx.app.repos, { price: 10 })
    const bothBegun = barrier(2)
    const addOne = () =>
      ctx.app.transaction(async (repos) => {
        if (ctx.engine !== 'sqlite') {
          await repos.products.findById(product.id)
          await bothBegun()
        }
        const current = await repos.products.findByIdForUpdate(product.id)
        assert.ok(current)
        return repos.products.update(product.id, { price: current.price + 1 }, current, current.version)
      })
    assert.deepEqual(await Promise.all([addOne(), addOne()]), [true, true])
    assert.deepEqual(await products().findById(product.id), { ...product, price: 12, version: 3 })
  })

  test('list filters by owner, by price (both bounds inclusive) and by text', async () => {
    const [a, b] = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const tag = uniqueSku().toLowerCase()
    const mine: ProductRecord[] = []
    for (const price of [201, 99, 150, 100, 200])
      mine.push(await insertProduct(ctx.app.repos, { owner_id: a, price, description: `x ${tag} y` }))
    const theirs = await insertProduct(ctx.app.repos, { owner_id: b, price: 150, description: `${tag}` })
    const list = async (filters: ProductListOptions['filters']) =>
      (await products().list({ sort: { column: 'price', direction: 'asc' }, filters, limit: 50 })).map(
        (p) => p.id,
      )
    const byPrice = [...mine].sort((x, y) => x.price - y.price || x.id - y.id)
    assert.deepEqual(
      await products().list({
        sort: { column: 'price', direction: 'asc' },
        filters: { ownerId: a },
        limit: 50,
      }),
      byPrice,
    )
    assert.deepEqual(await list({ ownerId: a, minPrice: 100, maxPrice: 200 }), [
      mine[3]!.id,
      mine[2]!.id,
      mine[4]!.id,
    ])
    assert.deepEqual(await list({ ownerId: a, minPrice: 101, maxPrice: 199 }), [mine[2]!.id])
    assert.deepEqual(await list({ text: tag }), [
      mine[1]!.id,
      mine[3]!.id,
      mine[2]!.id,
      theirs.id,
      ...[4, 0].map((i) => mine[i]!.id),
    ])
    assert.deepEqual(await list({ text: tag, ownerId: b }), [theirs.id])
    assert.deepEqual(await list({ ownerId: b }), [theirs.id])
    assert.deepEqual(await list({ text: mine[0]!.product_id.toLowerCase() }), [mine[0]!.id])
  })

  test('list: text matches the SKU, name or description, with LIKE wildcards taken literally', async () => {
    const owner = await insertPlainUser(ctx.app.repos)
    const tag = uniqueSku().toLowerCase()
    const wild = await insertProduct(ctx.app.repos, { owner_id: owner, name: `Ｎame ${tag}_%!z` })
    const tame = await insertProduct(ctx.app.repos, { owner_id: owner, description: `${tag}ab!z` })
    const list = async (text: string) =>
      (
        await products().list({ sort: { column: 'name', direction: 'asc' }, filters: { text }, limit: 50 })
      ).map((p) => p.id)
    assert.deepEqual(await list(`name ${tag}_%!z`), [wild.id])
    assert.deepEqual(await list(`${tag}_%`), [wild.id])
    assert.deepEqual(await list(`${tag}__`), [])
    assert.deepEqual(await list(`${tag}%z`), [])
    assert.deepEqual(await list(`${tag}a!z`), [])
    assert.deepEqual(await list(`${tag}ab!`), [tame.id])
    assert.deepEqual(await list(tame.product_id.toLowerCase()), [tame.id])
    assert.deepEqual(await list(tag), [tame.id, wild.id])
  })

  test('list pages in every order, ties broken by id, each product exactly once', async () => {
    const owner = await insertPlainUser(ctx.app.repos)
    const rows: [number, string, number][] = [
      [5, 'b', 2],
      [5, 'a', 1],
      [3, 'c', 2],
      [5, 'b', 0],
      [9, 'a', 3],
      [3, 'b', 2],
    ]
    const all: ProductRecord[] = []
    for (const [price, name, second] of rows)
      all.push(await insertProduct(ctx.app.repos, { owner_id: owner, price, name, created_at: at(second) }))
    for (const column of ['created_at', 'price', 'name'] as ProductSortColumn[])
      for (const direction of ['asc', 'desc'] as const) {
        const key = (p: ProductRecord) => (column === 'created_at' ? p.created_at.getTime() : p[column])
        const ascending = [...all].sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : x.id - y.id))
        const expected = direction === 'asc' ? ascending : ascending.reverse()
        const sort = { column, direction }
        const page = (after?: ProductRecord) =>
          products().list({
            sort,
            filters: { ownerId: owner },
            limit: 2,
            after: after && { value: after[column], id: after.id },
          })
        const seen: ProductRecord[] = []
        for (let next = await page(); next.length > 0; next = await page(seen.at(-1))) {
          assert.ok(next.length <= 2)
          seen.push(...next)
          assert.ok(seen.length <= all.length, `${column} ${direction}: more rows than there are`)
        }
        assert.deepEqual(seen, expected, `${column} ${direction}`)
      }
  })
})
