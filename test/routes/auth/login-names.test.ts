import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import { hashPassword } from '../../../src/auth/passwords.js'
import { ConfigError } from '../../../src/config.js'
import {
  adminAndLogin,
  assertProblem,
  describeEachEngine,
  register,
  registerAndLogin,
  testConfig,
  uniqueUser,
} from '../../support/app.js'

// Names and emails are two separate spaces: a name never contains "@", and a login name with "@"
// is looked up among emails only. The attack: someone registers the *name* "carol@…" before Carol
// registers that *address*, then waits for Carol's login by email to land in their account, or
// to lock her out of hers.

function loginAttempt(app: FastifyInstance, username: string, password: string) {
  return app.inject({
    method: 'POST',
    url: '/login',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ username, password }).toString(),
  })
}

/** Logs in and answers whose account the token opens (its user id). */
async function loggedInAs(app: FastifyInstance, username: string, password: string): Promise<number> {
  const response = await loginAttempt(app, username, password)
  assert.equal(response.statusCode, 200, `login as ${username}: ${response.body}`)
  return decodeJwt(response.json<{ access_token: string }>().access_token).user_id as number
}

/** The answer any wrong password gets, minus what differs per request. */
function refusal(response: Awaited<ReturnType<typeof loginAttempt>>) {
  assertProblem(response, 401)
  return {
    status: response.statusCode,
    contentType: response.headers['content-type'],
    challenge: response.headers['www-authenticate'],
    body: response.json(),
  }
}

/** A unique address whose local part is free to be squatted as a name. */
function victimEmail(): string {
  return uniqueUser().email
}

/**
 * An account whose name contains "@", written straight into the database as it could exist from
 * before names were refused with "@".
 */
async function insertLegacySquatter(app: FastifyInstance, name: string, password: string) {
  const squatter = uniqueUser()
  const now = new Date()
  await app.db
    .insertInto('users')
    .values({
      name,
      name_key: name.normalize('NFKC').toLowerCase(),
      email: squatter.email,
      password_hash: await hashPassword(password),
      role: 'user',
      is_active: true,
      email_verified: false,
      created_at: now,
      updated_at: now,
    })
    .execute()
  const row = await app.db
    .selectFrom('users')
    .select('id')
    .where('email', '=', squatter.email)
    .executeTakeFirstOrThrow()
  return { id: row.id, email: squatter.email, password }
}

async function userCount(app: FastifyInstance): Promise<number> {
  return (await app.db.selectFrom('users').select('id').execute()).length
}

describeEachEngine('user names and emails never collide', (ctx) => {
  test('registering a name that is an email address is 422 naming the field, and creates nothing', async () => {
    const before = await userCount(ctx.app)
    for (const name of [victimEmail(), 'carol@', '@carol', 'a@b']) {
      const response = await ctx.app.inject({
        method: 'POST',
        url: '/users/',
        payload: uniqueUser({ name }),
      })
      const problem = assertProblem(response, 422)
      assert.deepEqual(
        problem.errors?.map((issue) => issue.field),
        ['name'],
        name,
      )
      assert.match(problem.errors![0]!.message, /"@"/, `the 422 says why: ${response.body}`)
    }
    assert.equal(await userCount(ctx.app), before)
  })

  test('nor may a name hold "@" in its full-width or small forms (they normalise to "@")', async () => {
    for (const name of ['carol\uFF20example.com', 'carol\uFE6Bexample.com']) {
      const response = await ctx.app.inject({ method: 'POST', url: '/users/', payload: uniqueUser({ name }) })
      assert.deepEqual(
        assertProblem(response, 422).errors?.map((issue) => issue.field),
        ['name'],
        name,
      )
    }
  })

  test('renaming yourself, or being renamed by an admin, to an email address is 422 and changes nothing', async () => {
    const user = await registerAndLogin(ctx.app)
    const admin = await adminAndLogin(ctx.app)
    for (const headers of [user.headers, admin.headers]) {
      const response = await ctx.app.inject({
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers,
        payload: { name: victimEmail() },
      })
      assert.deepEqual(
        assertProblem(response, 422).errors?.map((issue) => issue.field),
        ['name'],
      )
    }
    const row = await ctx.app.db
      .selectFrom('users')
      .select('name')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow()
    assert.equal(row.name, user.name)
  })

  test("a squatter's legacy name equal to Carol's email neither locks Carol out nor lets the squatter in", async () => {
    const carolEmail = victimEmail()
    const squatterPassword = 'the squatters own password 4417'
    const squatter = await insertLegacySquatter(ctx.app, carolEmail, squatterPassword)
    // Carol registers her address afterwards: the squatter's row has the lower id.
    const carol = await register(ctx.app, uniqueUser({ email: carolEmail }))
    assert.ok(squatter.id < carol.id)

    // Carol's login by email enters Carol's account, in any case and with spaces around it.
    for (const username of [carolEmail, carolEmail.toUpperCase(), `  ${carolEmail} `])
      assert.equal(await loggedInAs(ctx.app, username, carol.password), carol.id, username)

    // The squatter's password for Carol's address is a wrong password, answered like any other.
    const reference = refusal(await loginAttempt(ctx.app, carolEmail, 'not anyones password 9921'))
    for (const username of [carolEmail, carolEmail.toUpperCase()])
      assert.deepEqual(refusal(await loginAttempt(ctx.app, username, squatterPassword)), reference, username)

    // The squatter's own account still works, by its email.
    assert.equal(await loggedInAs(ctx.app, squatter.email, squatterPassword), squatter.id)
  })

  test('a legacy name with "@" no longer logs in by name; an admin can rename it, and the new name works', async () => {
    const legacyName = `legacy_${Date.now().toString(36)}@nowhere`
    const password = 'legacy account password 5531'
    const legacy = await insertLegacySquatter(ctx.app, legacyName, password)
    assert.equal((await loginAttempt(ctx.app, legacyName, password)).statusCode, 401)
    assert.equal(await loggedInAs(ctx.app, legacy.email, password), legacy.id)

    const admin = await adminAndLogin(ctx.app)
    const newName = uniqueUser().name
    const renamed = await ctx.app.inject({
      method: 'PATCH',
      url: `/users/${legacy.id}`,
      headers: admin.headers,
      payload: { name: newName },
    })
    assert.equal(renamed.statusCode, 200, renamed.body)
    assert.equal(await loggedInAs(ctx.app, newName.toUpperCase(), password), legacy.id)
  })

  test('login by name still works, in any case and with spaces around it', async () => {
    const user = await register(ctx.app)
    for (const username of [user.name, user.name.toUpperCase(), ` ${user.name}\t`])
      assert.equal(await loggedInAs(ctx.app, username, user.password), user.id, username)
  })

  test('names that differ only in case still collide: 409, and nothing is created', async () => {
    const first = await register(ctx.app)
    const before = await userCount(ctx.app)
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/users/',
      payload: uniqueUser({ name: first.name.toUpperCase() }),
    })
    assert.match(assertProblem(response, 409).detail, /name/i)
    assert.equal(await userCount(ctx.app), before)
  })
})

test('FIRST_ADMIN_NAME with "@" is refused at start with one line naming the variable', () => {
  for (const name of ['boss@example.com', 'boss\uFF20example.com']) {
    assert.throws(
      () =>
        testConfig({
          FIRST_ADMIN_EMAIL: 'boss@example.com',
          FIRST_ADMIN_PASSWORD: 'first admin password, long',
          FIRST_ADMIN_NAME: name,
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error))
        assert.match(error.message, /^FIRST_ADMIN_NAME: .*"@"/)
        assert.equal(error.message.includes('\n'), false)
        return true
      },
    )
  }
})
