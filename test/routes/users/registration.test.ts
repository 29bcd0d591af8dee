import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  adminAndLogin,
  assertProblem,
  bearer,
  describeEachEngine,
  login,
  register,
  registerAndLogin,
  uniqueUser,
} from '../../support/app.js'
import {
  type PublicUser,
  createUser,
  userRow,
  userRowByEmail,
  countUsers,
  assertValidationProblem,
  assertPublicUser,
} from './support.js'

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
