/**
 * Requests, database reads and expectations shared by the catalogue tests (sorting, pages, filters,
 * ETag/If-Match, Idempotency-Key, concurrency): what a client sees is checked against what is
 * left in the database.
 */
import assert from 'node:assert/strict'
import type { LightMyRequestResponse } from 'fastify'
import {
  assertProblem,
  uniqueSku,
  type EngineContext,
  type ProductBody as Product,
  type ProductPage as Page,
  type TestActor as Actor,
} from '../../support/app.js'

export type Query = Record<string, string | number | undefined>

export const SORTS = ['created_at', '-created_at', 'price', '-price', 'name', '-name'] as const
export type Sort = (typeof SORTS)[number]
export type SortColumn = 'created_at' | 'price' | 'name'

/** A fixed moment in the past; fixtures place their created_at relative to it. */
export const BASE = Date.parse('2024-03-04T05:06:07.000Z')
export const secondsAfterBase = (seconds: number) => new Date(BASE + seconds * 1000)

// ------------------------------------------------------------------ requests

export function productsUrl(query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const search = params.toString()
  return search ? `/product/?${search}` : '/product/'
}

export function listProducts(ctx: EngineContext, actor: Actor, query: Query = {}) {
  return ctx.app.inject({ method: 'GET', url: productsUrl(query), headers: actor.headers })
}

export async function getPage(ctx: EngineContext, actor: Actor, query: Query = {}): Promise<Page> {
  const response = await listProducts(ctx, actor, query)
  assert.equal(response.statusCode, 200, response.body)
  return response.json<Page>()
}

/**
 * Walks every page of GET /product/ with the given query and returns the items in the order they
 * were served. `between` runs after every page that has a next one, before it is requested.
 */
export async function walk(
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

export const newProduct = (overrides: Record<string, unknown> = {}) => ({
  product_id: uniqueSku(),
  name: 'keyboard',
  description: 'tenkeyless',
  price: 12999,
  ...overrides,
})

export async function createProduct(
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
export async function createProductAt(
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

export const STORED_COLUMNS = [
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

export const rowOf = (ctx: EngineContext, id: number) =>
  ctx.app.db.selectFrom('products').select(STORED_COLUMNS).where('id', '=', id).executeTakeFirst()

export async function countProducts(ctx: EngineContext, sku?: string): Promise<number> {
  const row = await ctx.app.db
    .selectFrom('products')
    .select((eb) => eb.fn.countAll().as('n'))
    .$if(sku !== undefined, (qb) => qb.where('product_id', '=', sku!))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Every product in the database, as the API shows it. */
export async function storedProducts(ctx: EngineContext): Promise<Product[]> {
  const rows = await ctx.app.db.selectFrom('products').select(STORED_COLUMNS).orderBy('id').execute()
  return rows.map(({ version: _version, ...row }) => ({
    ...row,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  }))
}

// ------------------------------------------------------------------ expectations

export const ids = (products: readonly Product[]) => products.map((product) => product.id)

export function sortValue(product: Product, column: SortColumn): number | string {
  if (column === 'created_at') return Date.parse(product.created_at)
  return column === 'price' ? product.price : product.name
}

/** The order a sort promises: the column, then the id, both in the sort's direction. */
export function compareFor(sort: Sort) {
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
export function assertEachOnce(seen: readonly Product[], expected: readonly Product[], label: string) {
  const counts = new Map<number, number>()
  for (const product of seen) counts.set(product.id, (counts.get(product.id) ?? 0) + 1)
  const repeated = [...counts].filter(([, n]) => n > 1).map(([id]) => id)
  const missing = expected.filter((product) => !counts.has(product.id)).map((product) => product.id)
  assert.deepEqual(repeated, [], `${label}: products served twice`)
  assert.deepEqual(missing, [], `${label}: products skipped`)
}

/** A 422 problem whose `errors` name the given field in the given part of the request. */
export function assertInvalid(
  response: LightMyRequestResponse,
  where: 'body' | 'query' | 'header',
  field: string,
) {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors) && problem.errors.length > 0, 'a 422 lists its errors')
  assert.ok(
    problem.errors.some((issue) => issue.in === where && issue.field === field),
    `expected an error for ${where} field "${field}", got ${JSON.stringify(problem.errors)}`,
  )
  return problem
}

/** Decodes a cursor's payload (it is opaque to clients, but tests may look inside). */
export function cursorPayload(cursor: string): Record<string, unknown> {
  const [payload] = cursor.split('.') as [string]
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
}

export async function getProduct(
  ctx: EngineContext,
  actor: Actor,
  id: number,
  headers: Record<string, string> = {},
) {
  return ctx.app.inject({ method: 'GET', url: `/product/${id}`, headers: { ...actor.headers, ...headers } })
}

export async function etagOf(ctx: EngineContext, actor: Actor, id: number): Promise<string> {
  const response = await getProduct(ctx, actor, id)
  assert.equal(response.statusCode, 200, response.body)
  const etag = response.headers.etag
  assert.equal(typeof etag, 'string')
  return etag as string
}

export function write(
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
export function changeFor(method: 'PUT' | 'PATCH', product: Product, price: number): Record<string, unknown> {
  return method === 'PUT'
    ? { product_id: product.product_id, name: `${product.name} replaced`, price }
    : { price }
}

export function postWithKey(ctx: EngineContext, actor: Actor, key: string, payload: unknown) {
  return ctx.app.inject({
    method: 'POST',
    url: '/product/',
    headers: { ...actor.headers, 'idempotency-key': key },
    payload: payload as Record<string, unknown>,
  })
}

export const storedKey = (ctx: EngineContext, userId: number, key: string) =>
  ctx.app.db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst()

let keyCounter = 0
export const newKey = () =>
  `key-${Date.now().toString(36)}-${(keyCounter += 1)}-${Math.random().toString(36).slice(2)}`
