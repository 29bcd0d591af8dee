/** Requests, rows and assertions shared by the tests of the product routes. */
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

/** An id no test database reaches, inside the range the path accepts. */
export const MISSING_ID = 2_147_483_647

/** A moment well before any test runs: rows moved there make "updated_at changed" certain. */
export const LONG_AGO = new Date('2020-01-02T03:04:05.678Z')

export const newProduct = (overrides: Record<string, unknown> = {}) => ({
  product_id: uniqueSku(),
  name: 'Mechanical keyboard',
  description: 'Tenkeyless, brown switches.',
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

/** The stored columns a client sees (version and search_text are internal). */
export const PUBLIC_COLUMNS = [
  'id',
  'product_id',
  'name',
  'description',
  'price',
  'owner_id',
  'created_at',
  'updated_at',
] as const

export const rowOf = (ctx: EngineContext, id: number) =>
  ctx.app.db.selectFrom('products').select(PUBLIC_COLUMNS).where('id', '=', id).executeTakeFirst()

export const rowWithSku = (ctx: EngineContext, sku: string) =>
  ctx.app.db.selectFrom('products').select(PUBLIC_COLUMNS).where('product_id', '=', sku).executeTakeFirst()

export async function countProducts(ctx: EngineContext): Promise<number> {
  const row = await ctx.app.db
    .selectFrom('products')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Moves a product's timestamps into the past, so a later change of updated_at is certain. */
export async function backdate(ctx: EngineContext, id: number) {
  await ctx.app.db
    .updateTable('products')
    .set({ created_at: LONG_AGO, updated_at: LONG_AGO })
    .where('id', '=', id)
    .execute()
}

/** The product as the API shows it, built from the database row. */
export function asJson(row: NonNullable<Awaited<ReturnType<typeof rowOf>>>): Product {
  return { ...row, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() }
}

/** A 422 problem whose `errors` name the given field in the given part of the request. */
export function assertInvalid(
  response: LightMyRequestResponse,
  where: 'body' | 'query' | 'path',
  field: string,
) {
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
export async function walkPages(ctx: EngineContext, actor: Actor, limit?: number): Promise<Product[]> {
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
export function assertNewestFirst(items: Product[]) {
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
export function tamperedSignature(token: string): string {
  const [header, claims, signature] = token.split('.') as [string, string, string]
  return `${header}.${claims}.${flipFirstCharacter(signature)}`
}

/** Changes one character of a base64url segment so that it decodes to different bytes. */
export function flipFirstCharacter(segment: string): string {
  return (segment[0] === 'A' ? 'B' : 'A') + segment.slice(1)
}
