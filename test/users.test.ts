import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp } from '../src/app.js'
import { ConfigError } from '../src/config.js'
import { openDatabase } from '../src/db/open.js'
import { parseDatabaseUrl } from '../src/db/target.js'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  register,
  registerAndLogin,
  testConfig,
  uniqueSku,
  uniqueUser,
  USER_FIELDS,
} from './support/app.js'

// ------------------------------------------------------------------ helpers

interface PublicUser {
  id: number
  name: string
  email: string
  role: 'user' | 'admin'
  is_active: boolean
  email_verified: boolean
  created_at: string
  updated_at: string
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

type Headers = Record<string, string>

function createUser(app: FastifyInstance, payload: unknown, headers: Headers = {}, url = '/users/') {
  return app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> })
}

function patchUser(app: FastifyInstance, id: number | string, payload: unknown, headers: Headers = {}) {
  return app.inject({
    method: 'PATCH',
    url: `/users/${id}`,
    headers,
    payload: payload as Record<string, unknown>,
  })
}

/** Everything stored about a user, password hash and timestamps included: "unchanged" means all of it. */
function userRow(app: FastifyInstance, id: number) {
  return app.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
}

function userRowByEmail(app: FastifyInstance, email: string) {
  return app.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst()
}

async function countUsers(app: FastifyInstance): Promise<number> {
  const row = await app.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .executeTakeFirstOrThrow()
  return Number(row.count)
}

async function activeAdminIds(app: FastifyInstance): Promise<number[]> {
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
function assertValidationProblem(response: LightMyRequestResponse, fields: string[], part = 'body') {
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

function assertPublicUser(body: Record<string, unknown>) {
  assert.deepEqual(Object.keys(body).sort(), USER_FIELDS)
  assert.match(String(body.created_at), ISO_INSTANT)
  assert.match(String(body.updated_at), ISO_INSTANT)
}

/** Makes the given user the only active admin of the database (tests in one file share it). */
async function soleAdmin(app: FastifyInstance) {
  await app.db.updateTable('users').set({ role: 'user' }).where('role', '=', 'admin').execute()
  const admin = await adminAndLogin(app)
  assert.deepEqual(await activeAdminIds(app), [admin.id])
  return admin
}

async function createProduct(app: FastifyInstance, headers: Headers) {
  const response = await app.inject({
    method: 'POST',
    url: '/product/',
    headers,
    payload: { product_id: uniqueSku(), name: 'Keyboard', description: 'Tenkeyless', price: 12999 },
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json<{ id: number; owner_id: number | null }>()
}

// ------------------------------------------------------------------ POST /users/

describeEachEngine('POST /users/ (registration)', (ctx) => {
  test('registers a user: 201, Location, and only the public fields', async () => {
    const user = uniqueUser()
    const response = await createUser(ctx.app, user)
    assert.equal(response.statusCode, 201, response.body)
    assert.match(String(response.headers['content-type']), /^application\/json/)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(response.headers.location, `/users/${body.id}`)
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.equal(body.name, user.name)
    assert.equal(body.email, user.email)
    assert.equal(body.role, 'user')
    assert.equal(body.is_active, true)
    assert.equal(body.email_verified, false)
    assert.equal(body.created_at, body.updated_at)
    assert.ok(Number.isInteger(body.id) && body.id > 0)
    assert.ok(!response.body.includes(user.password), 'the password is in the response')
    assert.ok(!response.body.includes('argon2'), 'the password hash is in the response')

    const row = await userRow(ctx.app, body.id)
    assert.ok(row)
    assert.equal(row.name, user.name)
    assert.equal(row.email, user.email)
    assert.equal(row.role, 'user')
    assert.equal(row.is_active, true)
    assert.equal(row.email_verified, false)
    assert.match(row.password_hash, /^\$argon2id\$/)
    assert.equal(row.created_at.toISOString(), body.created_at)

    // The Location names a resource the new user can read, and the password works.
    const token = await login(ctx.app, user.email, user.password)
    const located = await ctx.app.inject({
      method: 'GET',
      url: response.headers.location,
      headers: bearer(token),
    })
    assert.equal(located.statusCode, 200)
    assert.deepEqual(located.json(), body)
  })

  test('POST /users without the trailing slash registers too', async () => {
    const user = uniqueUser()
    const response = await createUser(ctx.app, user, {}, '/users')
    assert.equal(response.statusCode, 201, response.body)
    const body = response.json<PublicUser>()
    assert.equal(response.headers.location, `/users/${body.id}`)
    assert.equal((await userRow(ctx.app, body.id))?.email, user.email)
  })

  test('the email is stored lower-cased, and the user logs in with it in any case', async () => {
    const user = uniqueUser()
    const mixed = user.email.replace(/^user_/, 'User_').replace('example.com', 'Example.COM')
    const response = await createUser(ctx.app, { ...user, email: mixed })
    assert.equal(response.statusCode, 201, response.body)
    assert.equal(response.json<PublicUser>().email, user.email)
    const row = await userRow(ctx.app, response.json<PublicUser>().id)
    assert.equal(row?.email, user.email)
    assert.ok(await login(ctx.app, mixed.toUpperCase(), user.password))
  })

  test('an email with spaces around it is refused (422), not stored', async () => {
    const user = uniqueUser()
    const before = await countUsers(ctx.app)
    const response = await createUser(ctx.app, { ...user, email: `  ${user.email} ` })
    assertValidationProblem(response, ['email'])
    assert.equal(await countUsers(ctx.app), before)
    assert.equal(await userRowByEmail(ctx.app, user.email), undefined)
  })

  test('a taken email, in another case, is 409 and creates nothing', async () => {
    const first = await register(ctx.app)
    const before = await countUsers(ctx.app)
    const response = await createUser(ctx.app, uniqueUser({ email: first.email.toUpperCase() }))
    const problem = assertProblem(response, 409)
    assert.match(problem.detail, /email/i)
    assert.equal(await countUsers(ctx.app), before)
  })

  test('a taken name, in another case, is 409 and creates nothing', async () => {
    const first = await register(ctx.app)
    const before = await countUsers(ctx.app)
    const response = await createUser(ctx.app, uniqueUser({ name: first.name.toUpperCase() }))
    const problem = assertProblem(response, 409)
    assert.match(problem.detail, /name/i)
    assert.equal(await countUsers(ctx.app), before)
  })

  test('a name that differs only in Unicode compatibility form (full-width letters) is taken too', async () => {
    const name = `wide${Date.now().toString(36)}`
    await register(ctx.app, uniqueUser({ name }))
    const fullWidth = [...name.toUpperCase()]
      .map((char) => (/[A-Z0-9]/.test(char) ? String.fromCodePoint(char.codePointAt(0)! + 0xfee0) : char))
      .join('')
    assert.notEqual(fullWidth.toLowerCase(), name)
    const before = await countUsers(ctx.app)
    assertProblem(await createUser(ctx.app, uniqueUser({ name: fullWidth })), 409)
    assert.equal(await countUsers(ctx.app), before)
  })

  const invalid: { title: string; change: (user: Record<string, unknown>) => unknown; fields: string[] }[] = [
    { title: 'no name', change: ({ name: _, ...rest }) => rest, fields: ['name'] },
    { title: 'no email', change: ({ email: _, ...rest }) => rest, fields: ['email'] },
    { title: 'no password', change: ({ password: _, ...rest }) => rest, fields: ['password'] },
    { title: 'an empty object', change: () => ({}), fields: ['name', 'email', 'password'] },
    { title: 'an unknown field', change: (user) => ({ ...user, nickname: 'x' }), fields: ['nickname'] },
    { title: 'its own id', change: (user) => ({ ...user, id: 1 }), fields: ['id'] },
    {
      title: 'email_verified: true',
      change: (user) => ({ ...user, email_verified: true }),
      fields: ['email_verified'],
    },
    { title: 'is_active', change: (user) => ({ ...user, is_active: true }), fields: ['is_active'] },
    { title: 'a number as name', change: (user) => ({ ...user, name: 12345 }), fields: ['name'] },
    { title: 'a boolean as password', change: (user) => ({ ...user, password: true }), fields: ['password'] },
    {
      title: 'a number as password',
      change: (user) => ({ ...user, password: 12345678 }),
      fields: ['password'],
    },
    { title: 'null as email', change: (user) => ({ ...user, email: null }), fields: ['email'] },
    { title: 'an unknown role', change: (user) => ({ ...user, role: 'superuser' }), fields: ['role'] },
    { title: 'an empty name', change: (user) => ({ ...user, name: '' }), fields: ['name'] },
    {
      title: 'a name of 65 characters',
      change: (user) => ({ ...user, name: 'n'.repeat(65) }),
      fields: ['name'],
    },
    {
      title: 'a name with a leading space',
      change: (user) => ({ ...user, name: ` ${String(user.name)}` }),
      fields: ['name'],
    },
    {
      title: 'a name with a trailing space',
      change: (user) => ({ ...user, name: `${String(user.name)} ` }),
      fields: ['name'],
    },
    {
      title: 'a name with a line break',
      change: (user) => ({ ...user, name: 'two\nlines' }),
      fields: ['name'],
    },
    {
      title: 'a name with a NUL character',
      change: (user) => ({ ...user, name: 'nul\u0000name' }),
      fields: ['name'],
    },
    {
      // "İ" lower-cases to two code points: 64 of them no longer fit the case-insensitive key.
      title: 'a name that outgrows 64 characters once lower-cased',
      change: (user) => ({ ...user, name: 'İ'.repeat(64) }),
      fields: ['name'],
    },
    {
      title: 'an email without @',
      change: (user) => ({ ...user, email: 'not-an-email' }),
      fields: ['email'],
    },
    {
      title: 'an email of 255 characters',
      change: (user) => ({ ...user, email: `${'a'.repeat(243)}@example.com` }),
      fields: ['email'],
    },
    {
      title: 'a password of 7 characters',
      change: (user) => ({ ...user, password: 'abcdefg' }),
      fields: ['password'],
    },
    {
      title: 'a password of 7 emoji (14 UTF-16 units)',
      change: (user) => ({ ...user, password: '😀'.repeat(7) }),
      fields: ['password'],
    },
    {
      title: 'a password of 1025 characters',
      change: (user) => ({ ...user, password: 'p'.repeat(1025) }),
      fields: ['password'],
    },
    {
      title: 'a password of 1025 emoji',
      change: (user) => ({ ...user, password: '😀'.repeat(1025) }),
      fields: ['password'],
    },
  ]
  for (const { title, change, fields } of invalid) {
    test(`a body with ${title} is 422 naming ${fields.join(', ')}, and nothing is stored`, async () => {
      const user = uniqueUser()
      const payload = change(user)
      const before = await countUsers(ctx.app)
      assertValidationProblem(await createUser(ctx.app, payload), fields)
      assert.equal(await countUsers(ctx.app), before)
      assert.equal(await userRowByEmail(ctx.app, user.email), undefined)
    })
  }

  test('a name of 64 characters, with inner spaces and accents, is accepted', async () => {
    const name = `José Müller ${'x'.repeat(64)}`.slice(0, 64)
    assert.equal([...name].length, 64)
    const response = await createUser(ctx.app, uniqueUser({ name }))
    assert.equal(response.statusCode, 201, response.body)
    assert.equal(response.json<PublicUser>().name, name)
    assert.equal((await userRow(ctx.app, response.json<PublicUser>().id))?.name, name)
  })

  test('a password of 8 emoji counts as 8 characters: accepted, and it logs in', async () => {
    const user = uniqueUser({ password: '😀'.repeat(8) })
    const response = await createUser(ctx.app, user)
    assert.equal(response.statusCode, 201, response.body)
    assert.ok(await login(ctx.app, user.email, user.password))
  })

  test('a password of exactly 1024 characters is accepted', async () => {
    const user = uniqueUser({ password: 'p'.repeat(1024) })
    const response = await createUser(ctx.app, user)
    assert.equal(response.statusCode, 201, response.body)
    assert.ok(await login(ctx.app, user.email, user.password))
  })

  test('a body that is not JSON is a 400 problem and creates nothing', async () => {
    const before = await countUsers(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/users/',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "half',
    })
    assertProblem(response, 400)
    assert.equal(await countUsers(ctx.app), before)
  })

  for (const [type, expected] of [
    ['application/x-www-form-urlencoded', 415],
    ['text/plain', undefined],
  ] as const) {
    test(`a ${type} body is refused with a 4xx problem and creates nothing`, async () => {
      const user = uniqueUser()
      const before = await countUsers(ctx.app)
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        headers: { 'content-type': type },
        payload: type === 'text/plain' ? JSON.stringify(user) : new URLSearchParams(user).toString(),
      })
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, response.body)
      assertProblem(response, expected ?? response.statusCode)
      assert.equal(await countUsers(ctx.app), before)
      assert.equal(await userRowByEmail(ctx.app, user.email), undefined)
    })
  }

  test('anonymous registration with role "admin" is 403 and creates nothing', async () => {
    const user = uniqueUser()
    const before = await countUsers(ctx.app)
    assertProblem(await createUser(ctx.app, { ...user, role: 'admin' }), 403)
    assert.equal(await countUsers(ctx.app), before)
    assert.equal(await userRowByEmail(ctx.app, user.email), undefined)
  })

  test('a non-admin creating a user with role "admin" is 403 and creates nothing', async () => {
    const caller = await registerAndLogin(ctx.app)
    const user = uniqueUser()
    const before = await countUsers(ctx.app)
    assertProblem(await createUser(ctx.app, { ...user, role: 'admin' }, caller.headers), 403)
    assert.equal(await countUsers(ctx.app), before)
    assert.equal(await userRowByEmail(ctx.app, user.email), undefined)
    assert.equal((await userRow(ctx.app, caller.id))?.role, 'user')
  })

  test('role "admin" with an invalid token is 401 and creates nothing', async () => {
    const user = uniqueUser()
    const before = await countUsers(ctx.app)
    const response = await createUser(ctx.app, { ...user, role: 'admin' }, bearer('not.a.token'))
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
    assert.equal(await countUsers(ctx.app), before)
  })

  test('anyone may send role "user" explicitly', async () => {
    const response = await createUser(ctx.app, { ...uniqueUser(), role: 'user' })
    assert.equal(response.statusCode, 201, response.body)
    assert.equal(response.json<PublicUser>().role, 'user')
  })

  test('an admin creates another admin: 201 with role admin', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = uniqueUser()
    const response = await createUser(ctx.app, { ...user, role: 'admin' }, admin.headers)
    assert.equal(response.statusCode, 201, response.body)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(body.role, 'admin')
    assert.equal(response.headers.location, `/users/${body.id}`)
    assert.equal((await userRow(ctx.app, body.id))?.role, 'admin')
    // The new admin has admin powers.
    const token = await login(ctx.app, user.email, user.password)
    const list = await ctx.app.inject({ method: 'GET', url: '/users/', headers: bearer(token) })
    assert.equal(list.statusCode, 200)
  })
})

// ------------------------------------------------------------------ GET /users/

describeEachEngine('GET /users/ (admin list)', (ctx) => {
  test('anonymous is 401 with WWW-Authenticate', async () => {
    const response = await ctx.app.inject({ method: 'GET', url: '/users/' })
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
  })

  test('a user who is not an admin is 403', async () => {
    const user = await registerAndLogin(ctx.app)
    assertProblem(await ctx.app.inject({ method: 'GET', url: '/users/', headers: user.headers }), 403)
    assertProblem(await ctx.app.inject({ method: 'GET', url: '/users', headers: user.headers }), 403)
  })

  test('an admin gets {items, next_cursor} with public fields only', async () => {
    const admin = await adminAndLogin(ctx.app)
    const other = await register(ctx.app)
    for (const url of ['/users/', '/users']) {
      const response = await ctx.app.inject({
        method: 'GET',
        url: `${url}?limit=100`,
        headers: admin.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json<{ items: PublicUser[]; next_cursor: string | null }>()
      assert.deepEqual(Object.keys(page).sort(), ['items', 'next_cursor'])
      assert.ok(page.items.length >= 2)
      for (const item of page.items) assertPublicUser(item as unknown as Record<string, unknown>)
      const listed = page.items.find((item) => item.id === other.id)
      assert.equal(listed?.email, other.email)
      assert.equal(listed?.name, other.name)
      assert.ok(!response.body.includes('argon2'))
    }
  })

  test('?limit=2 walks every user once, in order, with no duplicates or gaps', async () => {
    const admin = await adminAndLogin(ctx.app)
    for (let i = 0; i < 5; i += 1) await register(ctx.app)
    const expected = (await ctx.app.db.selectFrom('users').select('id').orderBy('id').execute()).map(
      (row) => row.id,
    )
    assert.ok(expected.length >= 7)

    const seen: number[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const query: string = cursor ? `limit=2&cursor=${encodeURIComponent(cursor)}` : 'limit=2'
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?${query}`,
        headers: admin.headers,
      })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json<{ items: PublicUser[]; next_cursor: string | null }>()
      assert.ok(page.items.length >= 1 && page.items.length <= 2, `page of ${page.items.length}`)
      if (page.next_cursor !== null) assert.equal(page.items.length, 2)
      seen.push(...page.items.map((item) => item.id))
      cursor = page.next_cursor
      pages += 1
      assert.ok(pages <= expected.length, 'the pagination does not end')
    } while (cursor !== null)

    assert.deepEqual(seen, expected)
    assert.equal(pages, Math.ceil(expected.length / 2))
  })

  const badQueries: { query: string; field: string }[] = [
    { query: 'limit=0', field: 'limit' },
    { query: 'limit=101', field: 'limit' },
    { query: 'limit=-1', field: 'limit' },
    { query: 'limit=abc', field: 'limit' },
    { query: 'limit=1.5', field: 'limit' },
    { query: 'cursor=', field: 'cursor' },
    { query: 'cursor=garbage', field: 'cursor' },
    { query: 'role_filter=admin', field: 'role_filter' },
  ]
  for (const { query, field } of badQueries) {
    test(`?${query} is 422 naming ${field}`, async () => {
      const admin = await adminAndLogin(ctx.app)
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?${query}`,
        headers: admin.headers,
      })
      assertValidationProblem(response, [field], 'query')
    })
  }

  test('a cursor with one character changed is 422 naming cursor', async () => {
    const admin = await adminAndLogin(ctx.app)
    await register(ctx.app)
    const first = await ctx.app.inject({ method: 'GET', url: '/users/?limit=1', headers: admin.headers })
    const cursor = first.json<{ next_cursor: string | null }>().next_cursor
    assert.ok(cursor, 'the first page has a next_cursor')
    // The untouched cursor works …
    const next = await ctx.app.inject({
      method: 'GET',
      url: `/users/?limit=1&cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assert.equal(next.statusCode, 200, next.body)
    // … and changing any one character of it (payload, separator or signature) does not.
    for (const index of [0, Math.floor(cursor.length / 2), cursor.length - 1]) {
      const original = cursor[index]!
      const replacement = original === 'A' ? 'B' : 'A'
      const tampered = cursor.slice(0, index) + replacement + cursor.slice(index + 1)
      const response = await ctx.app.inject({
        method: 'GET',
        url: `/users/?limit=1&cursor=${encodeURIComponent(tampered)}`,
        headers: admin.headers,
      })
      assertValidationProblem(response, ['cursor'], 'query')
    }
  })

  test('a product list cursor is not a users cursor (422)', async () => {
    const admin = await adminAndLogin(ctx.app)
    await createProduct(ctx.app, admin.headers)
    await createProduct(ctx.app, admin.headers)
    const products = await ctx.app.inject({ method: 'GET', url: '/product/?limit=1', headers: admin.headers })
    assert.equal(products.statusCode, 200, products.body)
    const cursor = products.json<{ next_cursor: string | null }>().next_cursor
    assert.ok(cursor)
    const response = await ctx.app.inject({
      method: 'GET',
      url: `/users/?cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assertValidationProblem(response, ['cursor'], 'query')
  })
})

// ------------------------------------------------------------------ GET /users/{id}

describeEachEngine('GET /users/{id}', (ctx) => {
  test('a user reads their own account, and /users/me is the same', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}`, headers: user.headers })
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(body.id, user.id)
    assert.equal(body.email, user.email)
    assert.equal(body.name, user.name)
    assert.equal(response.headers['cache-control'], 'no-store')

    const me = await ctx.app.inject({ method: 'GET', url: '/users/me', headers: user.headers })
    assert.equal(me.statusCode, 200)
    assert.deepEqual(me.json(), body)
  })

  test('an admin reads anyone', async () => {
    const admin = await adminAndLogin(ctx.app)
    const other = await register(ctx.app)
    const response = await ctx.app.inject({
      method: 'GET',
      url: `/users/${other.id}`,
      headers: admin.headers,
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().email, other.email)
  })

  test("another user's account is 403, and so is an id that does not exist (existence is not revealed)", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const existing = await ctx.app.inject({ method: 'GET', url: `/users/${other.id}`, headers: user.headers })
    const missing = await ctx.app.inject({ method: 'GET', url: '/users/2147483647', headers: user.headers })
    assertProblem(existing, 403)
    assertProblem(missing, 403)
    assert.deepEqual(missing.json(), existing.json())
    assert.ok(!existing.body.includes(other.email))
  })

  test('an admin asking for an id that does not exist gets 404', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(
      await ctx.app.inject({ method: 'GET', url: '/users/2147483647', headers: admin.headers }),
      404,
    )
  })

  for (const id of ['abc', '0', '-1', '1.5', '2147483648']) {
    test(`id "${id}" is 422 naming the path parameter`, async () => {
      const admin = await adminAndLogin(ctx.app)
      const response = await ctx.app.inject({ method: 'GET', url: `/users/${id}`, headers: admin.headers })
      assertValidationProblem(response, ['id'], 'path')
    })
  }

  test('anonymous is 401', async () => {
    const user = await register(ctx.app)
    const response = await ctx.app.inject({ method: 'GET', url: `/users/${user.id}` })
    assertProblem(response, 401)
    assert.match(String(response.headers['www-authenticate']), /^Bearer/)
  })
})

// ------------------------------------------------------------------ PATCH /users/{id}

describeEachEngine('PATCH /users/{id}', (ctx) => {
  test('a user changes their own name and email; a new email must be verified again', async () => {
    const user = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const fresh = uniqueUser()
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: fresh.name, email: fresh.email.toUpperCase(), current_password: user.password },
      user.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    const body = response.json<PublicUser>()
    assertPublicUser(body as unknown as Record<string, unknown>)
    assert.equal(body.name, fresh.name)
    assert.equal(body.email, fresh.email)
    assert.equal(body.email_verified, false)
    assert.equal(body.role, 'user')

    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.name, fresh.name)
    assert.equal(row?.email, fresh.email)
    assert.equal(row?.email_verified, false)
    assert.equal(row?.updated_at.toISOString(), body.updated_at)

    // The new email and name log in; the old email no longer does.
    assert.ok(await login(ctx.app, fresh.email, user.password))
    assert.ok(await login(ctx.app, fresh.name, user.password))
    await assert.rejects(login(ctx.app, user.email, user.password), /401/)
  })

  test('changing only the case of your own name is allowed', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await patchUser(ctx.app, user.id, { name: user.name.toUpperCase() }, user.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().name, user.name.toUpperCase())
    assert.equal((await userRow(ctx.app, user.id))?.name, user.name.toUpperCase())
  })

  test('sending your own email in another case keeps it verified', async () => {
    const user = await registerAndLogin(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const response = await patchUser(ctx.app, user.id, { email: user.email.toUpperCase() }, user.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().email_verified, true)
    assert.equal((await userRow(ctx.app, user.id))?.email_verified, true)
  })

  for (const change of [{ role: 'admin' }, { is_active: false }, { name: 'whatever', role: 'user' }]) {
    test(`a user sending ${JSON.stringify(change)} about themself is 403 and nothing changes`, async () => {
      const user = await registerAndLogin(ctx.app)
      const before = await userRow(ctx.app, user.id)
      assertProblem(await patchUser(ctx.app, user.id, change, user.headers), 403)
      assert.deepEqual(await userRow(ctx.app, user.id), before)
    })
  }

  test("a user changing another user's account is 403 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, other.id)
    assertProblem(await patchUser(ctx.app, other.id, { name: uniqueUser().name }, user.headers), 403)
    assertProblem(await patchUser(ctx.app, other.id, { email: uniqueUser().email }, user.headers), 403)
    assert.deepEqual(await userRow(ctx.app, other.id), before)
  })

  test('a user changing an id that does not exist is 403, like any other account', async () => {
    const user = await registerAndLogin(ctx.app)
    assertProblem(await patchUser(ctx.app, 2147483647, { name: uniqueUser().name }, user.headers), 403)
  })

  test('an admin changes the role and is_active of a user', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await register(ctx.app)
    const promoted = await patchUser(ctx.app, user.id, { role: 'admin' }, admin.headers)
    assert.equal(promoted.statusCode, 200, promoted.body)
    assert.equal(promoted.json<PublicUser>().role, 'admin')
    assert.equal((await userRow(ctx.app, user.id))?.role, 'admin')

    const changed = await patchUser(ctx.app, user.id, { role: 'user', is_active: false }, admin.headers)
    assert.equal(changed.statusCode, 200, changed.body)
    assert.equal(changed.json<PublicUser>().role, 'user')
    assert.equal(changed.json<PublicUser>().is_active, false)
    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.role, 'user')
    assert.equal(row?.is_active, false)
  })

  test('an admin changes the name and email of a user', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await register(ctx.app)
    const fresh = uniqueUser()
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: fresh.name, email: fresh.email },
      admin.headers,
    )
    assert.equal(response.statusCode, 200, response.body)
    const row = await userRow(ctx.app, user.id)
    assert.equal(row?.name, fresh.name)
    assert.equal(row?.email, fresh.email)
  })

  test('a deactivated user can no longer log in, and their token stops working at once', async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await registerAndLogin(ctx.app)
    const ok = await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers })
    assert.equal(ok.statusCode, 200)

    const response = await patchUser(ctx.app, user.id, { is_active: false }, admin.headers)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json<PublicUser>().is_active, false)

    for (const url of ['/current-user', `/users/${user.id}`]) {
      const rejected = await ctx.app.inject({ method: 'GET', url, headers: user.headers })
      assertProblem(rejected, 401)
      assert.match(String(rejected.headers['www-authenticate']), /^Bearer/)
    }
    const selfRevive = await patchUser(ctx.app, user.id, { name: uniqueUser().name }, user.headers)
    assertProblem(selfRevive, 401)
    const loginResponse = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username: user.email, password: user.password }).toString(),
    })
    assertProblem(loginResponse, 401)

    // Reactivated, the account logs in again.
    const reactivated = await patchUser(ctx.app, user.id, { is_active: true }, admin.headers)
    assert.equal(reactivated.statusCode, 200, reactivated.body)
    assert.ok(await login(ctx.app, user.email, user.password))
  })

  test("taking another user's name, in another case, is 409 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, user.id)
    const response = await patchUser(ctx.app, user.id, { name: other.name.toUpperCase() }, user.headers)
    assert.match(assertProblem(response, 409).detail, /name/i)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })

  test("taking another user's email, in another case, is 409 and nothing changes", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    await ctx.app.db.updateTable('users').set({ email_verified: true }).where('id', '=', user.id).execute()
    const before = await userRow(ctx.app, user.id)
    const response = await patchUser(
      ctx.app,
      user.id,
      { name: uniqueUser().name, email: other.email.toUpperCase(), current_password: user.password },
      user.headers,
    )
    assert.match(assertProblem(response, 409).detail, /email/i)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })

  const invalid: { title: string; payload: unknown; fields: string[] }[] = [
    { title: 'an empty body {}', payload: {}, fields: [] },
    { title: 'an unknown field', payload: { nickname: 'x' }, fields: ['nickname'] },
    {
      title: 'a password (changed elsewhere)',
      payload: { password: 'new password here' },
      fields: ['password'],
    },
    { title: 'email_verified', payload: { email_verified: true }, fields: ['email_verified'] },
    { title: 'a string as is_active', payload: { is_active: 'false' }, fields: ['is_active'] },
    { title: 'a number as name', payload: { name: 42 }, fields: ['name'] },
    { title: 'a name of 65 characters', payload: { name: 'n'.repeat(65) }, fields: ['name'] },
    { title: 'a name with a leading space', payload: { name: ' spaced' }, fields: ['name'] },
    { title: 'a name with a NUL character', payload: { name: 'nul\u0000name' }, fields: ['name'] },
    { title: 'a name too long once lower-cased', payload: { name: 'İ'.repeat(64) }, fields: ['name'] },
    { title: 'a bad email', payload: { email: 'nope' }, fields: ['email'] },
    { title: 'an unknown role', payload: { role: 'root' }, fields: ['role'] },
  ]
  for (const { title, payload, fields } of invalid) {
    test(`a change with ${title} is 422 and nothing changes`, async () => {
      const user = await registerAndLogin(ctx.app)
      const before = await userRow(ctx.app, user.id)
      assertValidationProblem(await patchUser(ctx.app, user.id, payload, user.headers), fields)
      assert.deepEqual(await userRow(ctx.app, user.id), before)
    })
  }

  test('an admin changing an id that does not exist gets 404', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(await patchUser(ctx.app, 2147483647, { name: uniqueUser().name }, admin.headers), 404)
  })

  test('id "abc" is 422, and anonymous is 401', async () => {
    const user = await registerAndLogin(ctx.app)
    assertValidationProblem(await patchUser(ctx.app, 'abc', { name: 'x' }, user.headers), ['id'], 'path')
    const before = await userRow(ctx.app, user.id)
    assertProblem(await patchUser(ctx.app, user.id, { name: uniqueUser().name }), 401)
    assert.deepEqual(await userRow(ctx.app, user.id), before)
  })
})

// ------------------------------------------------------------------ DELETE /users/{id}

describeEachEngine('DELETE /users/{id}', (ctx) => {
  const remove = (id: number | string, headers: Headers = {}) =>
    ctx.app.inject({ method: 'DELETE', url: `/users/${id}`, headers })

  test('a user deletes their own account: 204, the row is gone, the token and password stop working', async () => {
    const user = await registerAndLogin(ctx.app)
    const response = await remove(user.id, user.headers)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')
    assert.equal(await userRow(ctx.app, user.id), undefined)

    assertProblem(await ctx.app.inject({ method: 'GET', url: '/current-user', headers: user.headers }), 401)
    await assert.rejects(login(ctx.app, user.email, user.password), /401/)
    // The name and email are free again.
    await register(ctx.app, uniqueUser({ name: user.name, email: user.email }))
  })

  test("a user deleting another user's account is 403 and the row stays", async () => {
    const user = await registerAndLogin(ctx.app)
    const other = await register(ctx.app)
    const before = await userRow(ctx.app, other.id)
    assertProblem(await remove(other.id, user.headers), 403)
    assert.deepEqual(await userRow(ctx.app, other.id), before)
    assertProblem(await remove(2147483647, user.headers), 403)
  })

  test("an admin deletes a user; the user's products stay, with owner_id null", async () => {
    const admin = await adminAndLogin(ctx.app)
    const user = await registerAndLogin(ctx.app)
    const product = await createProduct(ctx.app, user.headers)
    assert.equal(product.owner_id, user.id)

    const response = await remove(user.id, admin.headers)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(await userRow(ctx.app, user.id), undefined)

    const row = await ctx.app.db
      .selectFrom('products')
      .selectAll()
      .where('id', '=', product.id)
      .executeTakeFirst()
    assert.ok(row, 'the product is gone')
    assert.equal(row.owner_id, null)
    const shown = await ctx.app.inject({
      method: 'GET',
      url: `/product/${product.id}`,
      headers: admin.headers,
    })
    assert.equal(shown.statusCode, 200, shown.body)
    assert.equal(shown.json<{ owner_id: number | null }>().owner_id, null)
  })

  test('an admin deleting an id that does not exist gets 404, also for an account just deleted', async () => {
    const admin = await adminAndLogin(ctx.app)
    assertProblem(await remove(2147483647, admin.headers), 404)
    const user = await register(ctx.app)
    assert.equal((await remove(user.id, admin.headers)).statusCode, 204)
    assertProblem(await remove(user.id, admin.headers), 404)
  })

  test('id "abc" is 422, and anonymous is 401 with the row left in place', async () => {
    const user = await registerAndLogin(ctx.app)
    assertValidationProblem(await remove('abc', user.headers), ['id'], 'path')
    assertProblem(await remove(user.id), 401)
    assert.ok(await userRow(ctx.app, user.id))
  })
})

// ------------------------------------------------------------------ the last active admin

describeEachEngine('the last active admin', (ctx) => {
  test('cannot demote themself (409), and nothing changes', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers), 409)
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('cannot deactivate themself (409), and nothing changes', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(await patchUser(ctx.app, admin.id, { is_active: false }, admin.headers), 409)
    const nameAndRole = await patchUser(
      ctx.app,
      admin.id,
      { name: uniqueUser().name, role: 'user' },
      admin.headers,
    )
    assertProblem(nameAndRole, 409)
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('cannot delete themself (409), and the row stays', async () => {
    const admin = await soleAdmin(ctx.app)
    const before = await userRow(ctx.app, admin.id)
    assertProblem(
      await ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
      409,
    )
    assert.deepEqual(await userRow(ctx.app, admin.id), before)
  })

  test('an inactive second admin does not count', async () => {
    const admin = await soleAdmin(ctx.app)
    const dormant = await register(ctx.app)
    await ctx.app.db
      .updateTable('users')
      .set({ role: 'admin', is_active: false })
      .where('id', '=', dormant.id)
      .execute()
    assertProblem(await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers), 409)
    assertProblem(
      await ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
      409,
    )
    assert.deepEqual(await activeAdminIds(ctx.app), [admin.id])
  })

  test('once there is another active admin, an admin may step down or leave', async () => {
    const admin = await soleAdmin(ctx.app)
    const second = await adminAndLogin(ctx.app)
    const demoted = await patchUser(ctx.app, admin.id, { role: 'user' }, admin.headers)
    assert.equal(demoted.statusCode, 200, demoted.body)
    assert.equal(demoted.json<PublicUser>().role, 'user')
    assert.deepEqual(await activeAdminIds(ctx.app), [second.id])

    const third = await adminAndLogin(ctx.app)
    const deleted = await ctx.app.inject({
      method: 'DELETE',
      url: `/users/${second.id}`,
      headers: second.headers,
    })
    assert.equal(deleted.statusCode, 204, deleted.body)
    assert.deepEqual(await activeAdminIds(ctx.app), [third.id])
  })

  test('two admins demoting each other at the same moment leave one admin', async () => {
    for (let round = 0; round < 4; round += 1) {
      const a = await soleAdmin(ctx.app)
      const b = await adminAndLogin(ctx.app)
      const responses = await Promise.all([
        patchUser(ctx.app, b.id, { role: 'user' }, a.headers),
        patchUser(ctx.app, a.id, { role: 'user' }, b.headers),
      ])
      const statuses = responses.map((response) => response.statusCode).sort()
      // The loser is refused: 409 (last admin), or 401 when its demotion (which ends its sessions)
      // came first.
      assert.ok(
        ['[200,409]', '[200,401]'].includes(JSON.stringify(statuses)),
        `round ${round}: ${JSON.stringify(statuses)}`,
      )
      assert.equal((await activeAdminIds(ctx.app)).length, 1, `round ${round}: no admin is left`)
    }
  })

  test('two admins deleting themselves at the same moment leave one admin', async () => {
    for (let round = 0; round < 4; round += 1) {
      const a = await soleAdmin(ctx.app)
      const b = await adminAndLogin(ctx.app)
      const responses = await Promise.all(
        [a, b].map((admin) =>
          ctx.app.inject({ method: 'DELETE', url: `/users/${admin.id}`, headers: admin.headers }),
        ),
      )
      const statuses = responses.map((response) => response.statusCode).sort()
      assert.deepEqual(statuses, [204, 409], `round ${round}`)
      assert.equal((await activeAdminIds(ctx.app)).length, 1, `round ${round}: no admin is left`)
    }
  })
})

// ------------------------------------------------------------------ the first admin from configuration

const FIRST_ADMIN = { email: 'Root.Admin@Example.com', password: 'first admin password, long' }

describeEachEngine(
  'the first admin from FIRST_ADMIN_EMAIL / FIRST_ADMIN_PASSWORD',
  (ctx) => {
    test('is created at start, verified, and logs in with admin powers', async () => {
      const row = await userRowByEmail(ctx.app, FIRST_ADMIN.email)
      assert.ok(row, 'no first admin')
      assert.equal(row.email, FIRST_ADMIN.email.toLowerCase())
      assert.equal(row.role, 'admin')
      assert.equal(row.is_active, true)
      assert.equal(row.email_verified, true)
      assert.equal(row.name, 'admin')
      assert.match(row.password_hash, /^\$argon2id\$/)

      const token = await login(ctx.app, FIRST_ADMIN.email, FIRST_ADMIN.password)
      const list = await ctx.app.inject({ method: 'GET', url: '/users/', headers: bearer(token) })
      assert.equal(list.statusCode, 200, list.body)
    })

    test('a second app on the same database neither adds an admin nor changes the password', async () => {
      const before = await ctx.app.db.selectFrom('users').selectAll().orderBy('id').execute()
      const second = await buildApp(
        testConfig({
          DATABASE_URL: ctx.databaseUrl,
          FIRST_ADMIN_EMAIL: FIRST_ADMIN.email.toUpperCase(),
          FIRST_ADMIN_PASSWORD: 'a different password entirely',
        }),
        { logger: false },
      )
      try {
        await second.ready()
        assert.deepEqual(await second.db.selectFrom('users').selectAll().orderBy('id').execute(), before)
        assert.ok(await login(second, FIRST_ADMIN.email, FIRST_ADMIN.password))
        await assert.rejects(login(second, FIRST_ADMIN.email, 'a different password entirely'), /401/)
      } finally {
        await second.close()
      }
    })

    // The app is given its own connection here, so that it can be closed when the start fails.
    async function startFails(env: Record<string, string>, variable: RegExp) {
      const database = openDatabase(parseDatabaseUrl(ctx.databaseUrl))
      try {
        await assert.rejects(
          async () => {
            const app = await buildApp(testConfig({ DATABASE_URL: ctx.databaseUrl, ...env }), {
              logger: false,
              database,
            })
            await app.ready()
          },
          (error: unknown) => error instanceof ConfigError && variable.test(error.message),
        )
      } finally {
        await database.db.destroy()
      }
    }

    test('a FIRST_ADMIN_PASSWORD that breaks the password rules stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        {
          FIRST_ADMIN_EMAIL: 'short@example.com',
          FIRST_ADMIN_PASSWORD: 'short',
          FIRST_ADMIN_NAME: 'short-admin',
        },
        /^FIRST_ADMIN_PASSWORD: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })

    test('a FIRST_ADMIN_NAME longer than a name may be stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        {
          FIRST_ADMIN_EMAIL: 'long-name@example.com',
          FIRST_ADMIN_PASSWORD: 'long enough password',
          FIRST_ADMIN_NAME: 'n'.repeat(65),
        },
        /^FIRST_ADMIN_NAME: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })

    test('a FIRST_ADMIN_NAME taken by another account stops the start, naming the variable', async () => {
      const before = await countUsers(ctx.app)
      await startFails(
        { FIRST_ADMIN_EMAIL: 'another@example.com', FIRST_ADMIN_PASSWORD: 'long enough password' },
        /^FIRST_ADMIN_NAME: /,
      )
      assert.equal(await countUsers(ctx.app), before)
    })
  },
  { env: { FIRST_ADMIN_EMAIL: FIRST_ADMIN.email, FIRST_ADMIN_PASSWORD: FIRST_ADMIN.password } },
)

describeEachEngine('GET /users/ filters, on a database of its own', (ctx) => {
  test('q, role and is_active filter the list, page by page, and a cursor only continues its own list', async () => {
    const admin = await adminAndLogin(ctx.app)
    const made = []
    const people: [string, string][] = [
      ['Alice_Q', 'alice@shop.example'],
      ['alicia', 'ALICIA@other.example'],
      ['bob', 'bob@shop.example'],
      ['carol_100%', 'carol@shop.example'],
    ]
    for (const [name, email] of people) made.push(await register(ctx.app, { ...uniqueUser(), name, email }))
    await ctx.app.db.updateTable('users').set({ is_active: false }).where('id', '=', made[2]!.id).execute()
    await ctx.app.db.updateTable('users').set({ role: 'admin' }).where('id', '=', made[1]!.id).execute()

    const names = async (query: string) => {
      const seen: string[] = []
      let cursor: string | null = null
      do {
        const response: { statusCode: number; body: string; json: <T>() => T } = await ctx.app.inject({
          url: `/users/?limit=1&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          headers: admin.headers,
        })
        assert.equal(response.statusCode, 200, response.body)
        const page = response.json<{ items: { name: string }[]; next_cursor: string | null }>()
        seen.push(...page.items.map((item) => item.name))
        cursor = page.next_cursor
      } while (cursor)
      return seen
    }
    assert.deepEqual(await names('q=ALI'), ['Alice_Q', 'alicia'], 'case-insensitive, in name or email')
    assert.deepEqual(await names('q=shop.example'), ['Alice_Q', 'bob', 'carol_100%'], 'in the email')
    assert.deepEqual(await names('q=100%25'), ['carol_100%'], '% is taken literally')
    assert.deepEqual(await names('q=e_q'), ['Alice_Q'], '_ is taken literally')
    // As wildcards, these would match bob and alice/alicia:
    assert.deepEqual(await names('q=b_b'), [], '_ is not a wildcard')
    assert.deepEqual(await names('q=a%25c'), [], '% is not a wildcard')
    assert.deepEqual(await names('is_active=false'), ['bob'])
    assert.deepEqual(await names('role=admin&q=ali'), ['alicia'])
    assert.ok((await names('role=admin')).includes(admin.name))

    const first = await ctx.app.inject({ url: '/users/?limit=1&q=ali', headers: admin.headers })
    const cursor = first.json<{ next_cursor: string }>().next_cursor
    const mixed = await ctx.app.inject({
      url: `/users/?limit=1&q=bob&cursor=${encodeURIComponent(cursor)}`,
      headers: admin.headers,
    })
    assert.equal(assertProblem(mixed, 422).errors?.[0]?.field, 'cursor')
    for (const bad of ['role=boss', 'is_active=maybe', `q=${'x'.repeat(101)}`, 'sort=name'])
      assertProblem(await ctx.app.inject({ url: `/users/?${bad}`, headers: admin.headers }), 422)
  })
})
