/** Requests, rows and assertions shared by the tests of the user routes. */
import assert from 'node:assert/strict'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { adminAndLogin, assertProblem, uniqueSku, USER_FIELDS } from '../../support/app.js'

// ------------------------------------------------------------------ helpers

export interface PublicUser {
  id: number
  name: string
  email: string
  role: 'user' | 'admin'
  is_active: boolean
  email_verified: boolean
  created_at: string
  updated_at: string
}

export const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

export type Headers = Record<string, string>

export function createUser(app: FastifyInstance, payload: unknown, headers: Headers = {}, url = '/users/') {
  return app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> })
}

export function patchUser(
  app: FastifyInstance,
  id: number | string,
  payload: unknown,
  headers: Headers = {},
) {
  return app.inject({
    method: 'PATCH',
    url: `/users/${id}`,
    headers,
    payload: payload as Record<string, unknown>,
  })
}

/** Everything stored about a user, password hash and timestamps included: "unchanged" means all of it. */
export function userRow(app: FastifyInstance, id: number) {
  return app.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
}

export function userRowByEmail(app: FastifyInstance, email: string) {
  return app.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst()
}

export async function countUsers(app: FastifyInstance): Promise<number> {
  const row = await app.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

export async function activeAdminIds(app: FastifyInstance): Promise<number[]> {
  const rows = await app.db
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('is_active', '=', true)
    .orderBy('id')
    .execute()
  return rows.map((row) => row.id)
}

/** A 422 problem whose `errors` name every given field (in the given part of the request). */
export function assertValidationProblem(response: LightMyRequestResponse, fields: string[], part = 'body') {
  const problem = assertProblem(response, 422)
  assert.ok(Array.isArray(problem.errors) && problem.errors.length > 0, `no errors list: ${response.body}`)
  for (const field of fields)
    assert.ok(
      problem.errors.some((issue) => issue.field === field && issue.in === part),
      `the errors do not name ${part} field "${field}": ${JSON.stringify(problem.errors)}`,
    )
  for (const issue of problem.errors) assert.equal(typeof issue.message, 'string')
  return problem
}

export function assertPublicUser(body: Record<string, unknown>) {
  assert.deepEqual(Object.keys(body).sort(), USER_FIELDS)
  assert.match(String(body.created_at), ISO_INSTANT)
  assert.match(String(body.updated_at), ISO_INSTANT)
}

/** Makes the given user the only active admin of the database (tests in one file share it). */
export async function soleAdmin(app: FastifyInstance) {
  await app.db.updateTable('users').set({ role: 'user' }).where('role', '=', 'admin').execute()
  const admin = await adminAndLogin(app)
  assert.deepEqual(await activeAdminIds(app), [admin.id])
  return admin
}

export async function createProduct(app: FastifyInstance, headers: Headers) {
  const response = await app.inject({
    method: 'POST',
    url: '/product/',
    headers,
    payload: { product_id: uniqueSku(), name: 'Keyboard', description: 'Tenkeyless', price: 12999 },
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json<{ id: number; owner_id: number | null }>()
}
