/**
 * The password work a login costs: the same argon2id verification whether the account exists or
 * not (the defence against finding accounts by response time), counted rather than timed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { passwordHashing, verifyAgainstDummyHash, verifyPassword } from '../../src/auth/passwords.js'
import { describeEachEngine, register, uniqueUser } from '../support/app.js'

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

describeEachEngine('the password work of a login', (ctx) => {
  /** The argon2id verifications one login attempt made, and its status. */
  async function verificationsOf(username: string, password: string) {
    const before = passwordHashing()
    const response = await ctx.app.inject({
      method: 'POST',
      url: '/login',
      headers: FORM,
      payload: new URLSearchParams({ username, password }).toString(),
    })
    const after = passwordHashing()
    return { status: response.statusCode, verifications: after.verify - before.verify }
  }

  test('an unknown account costs one verification, as a wrong and a right password do', async () => {
    const user = await register(ctx.app)
    // The dummy hash is computed once per process: a first unknown login makes it.
    await verificationsOf(uniqueUser().email, 'warm-up')
    assert.deepEqual(await verificationsOf(uniqueUser().email, 'some password'), {
      status: 401,
      verifications: 1,
    })
    assert.deepEqual(await verificationsOf(uniqueUser().name, 'some password'), {
      status: 401,
      verifications: 1,
    })
    assert.deepEqual(await verificationsOf(user.email, 'a wrong password'), { status: 401, verifications: 1 })
    assert.deepEqual(await verificationsOf(user.email, user.password), { status: 200, verifications: 1 })
  })

  test('a deactivated account costs the same verification and gets the same 401', async () => {
    const user = await register(ctx.app)
    await ctx.app.repos.users.update(user.id, { is_active: false })
    assert.deepEqual(await verificationsOf(user.email, user.password), { status: 401, verifications: 1 })
  })
})

test('the dummy verification never matches, whatever the password', async () => {
  for (const password of ['', 'dummy password that matches no account', 'x'.repeat(100)])
    assert.equal(await verifyAgainstDummyHash(password), false)
})

test('a malformed stored hash is a failed verification, not an error', async () => {
  assert.equal(await verifyPassword('not an argon2 hash', 'password'), false)
  assert.equal(await verifyPassword('', ''), false)
})
