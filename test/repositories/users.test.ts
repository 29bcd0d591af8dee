/** The users repository against each engine: what every query returns and leaves in the database. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { NewUserRow } from '../../src/db/database.js'
import type { Repositories } from '../../src/repositories/index.js'
import { describeEachEngine, uniqueUser } from '../support/app.js'
import { at, barrier } from './support.js'

/** A user row with a mixed-case name, so that `name` and `name_key` differ. */
function newUser(overrides: Partial<NewUserRow> = {}): NewUserRow {
  const { name, email } = uniqueUser()
  const mixed = `U${name}`
  return {
    name: mixed,
    name_key: mixed.toLowerCase(),
    email,
    password_hash: `hash-of-${name}`,
    role: 'user',
    is_active: true,
    email_verified: false,
    created_at: at(-60),
    updated_at: at(-30),
    ...overrides,
  }
}

async function insertUser(repos: Repositories, overrides: Partial<NewUserRow> = {}) {
  const row = newUser(overrides)
  return { ...row, id: await repos.users.insert(row) }
}

/** The record the repository shows: every column but password_hash and name_key. */
function recordOf(user: Awaited<ReturnType<typeof insertUser>>) {
  const { id, name, email, role, is_active, email_verified, created_at, updated_at } = user
  return { id, name, email, role, is_active, email_verified, created_at, updated_at }
}

/**
 * Resolves once `parties` callers have arrived: two transactions that both wait here have both
 * begun before either goes on. (Not on SQLite, which runs one transaction at a time.)
 */

describeEachEngine('users repository', (ctx) => {
  const users = () => ctx.app.repos.users

  test('insert returns the new id; findById reads exactly that row, without the password hash', async () => {
    const first = await insertUser(ctx.app.repos, { role: 'admin', is_active: false, email_verified: true })
    const second = await insertUser(ctx.app.repos)
    assert.ok(Number.isInteger(first.id) && second.id > first.id)
    assert.deepEqual(await users().findById(first.id), recordOf(first))
    assert.deepEqual(await users().findById(second.id), recordOf(second))
    assert.equal(await users().findById(second.id + 1000), undefined)
  })

  test('in a transaction, an insert refused for a taken name or email fails alone: the transaction goes on', async () => {
    const taken = await insertUser(ctx.app.repos)
    const kept = newUser()
    await ctx.app.transaction(async (repos) => {
      await assert.rejects(repos.users.insert(newUser({ name_key: taken.name_key })))
      await assert.rejects(repos.users.insert(newUser({ email: taken.email })))
      // PostgreSQL refuses every statement after a failed one, unless it failed under a savepoint.
      assert.ok(await repos.users.insert(kept))
    })
    assert.equal((await users().findCredentialsByLogin({ by: 'email', key: kept.email }))?.role, 'user')
  })

  test('findCredentialsByLogin looks up the email or the name key, as told', async () => {
    const user = await insertUser(ctx.app.repos, { email_verified: true })
    const other = await insertUser(ctx.app.repos)
    const credentials = {
      id: user.id,
      role: 'user',
      password_hash: user.password_hash,
      is_active: true,
      email_verified: true,
    }
    assert.deepEqual(await users().findCredentialsByLogin({ by: 'email', key: user.email }), credentials)
    assert.deepEqual(await users().findCredentialsByLogin({ by: 'name', key: user.name_key }), credentials)
    assert.equal((await users().findCredentialsByLogin({ by: 'email', key: other.email }))?.id, other.id)
    // Each key is looked up in its own column only, and the name in its lower-cased form.
    assert.equal(await users().findCredentialsByLogin({ by: 'name', key: user.email }), undefined)
    assert.equal(await users().findCredentialsByLogin({ by: 'email', key: user.name_key }), undefined)
    assert.equal(await users().findCredentialsByLogin({ by: 'name', key: user.name }), undefined)
  })

  test('findPasswordHash reads the hash of that user only', async () => {
    const user = await insertUser(ctx.app.repos)
    const other = await insertUser(ctx.app.repos)
    assert.equal(await users().findPasswordHash(user.id), user.password_hash)
    assert.equal(await users().findPasswordHash(other.id), other.password_hash)
    assert.equal(await users().findPasswordHash(other.id + 1000), undefined)
    await users().delete(user.id)
    assert.equal(await users().findPasswordHash(user.id), undefined)
  })

  test('findConflict names the field that collides, and ignores the user being changed', async () => {
    const a = await insertUser(ctx.app.repos)
    const b = await insertUser(ctx.app.repos)
    const { email: freeEmail, name: freeName } = uniqueUser()
    assert.equal(await users().findConflict(a.email, freeName), 'email')
    assert.equal(await users().findConflict(freeEmail, a.name_key), 'name')
    assert.equal(await users().findConflict(a.email, undefined), 'email')
    assert.equal(await users().findConflict(undefined, a.name_key), 'name')
    assert.equal(await users().findConflict(freeEmail, freeName), undefined)
    assert.equal(await users().findConflict(undefined, a.name), undefined)
    assert.equal(await users().findConflict(a.email, a.name_key, a.id), undefined)
    assert.equal(await users().findConflict(a.email, a.name_key, b.id), 'email')
    assert.equal(await users().findConflict(a.email, b.name_key, a.id), 'name')
  })

  test('update changes that row only; false when there is no such row', async () => {
    const user = await insertUser(ctx.app.repos)
    const other = await insertUser(ctx.app.repos)
    const changes = { role: 'admin' as const, email_verified: true, updated_at: at(5) }
    assert.equal(await users().update(user.id, changes), true)
    assert.deepEqual(await users().findById(user.id), { ...recordOf(user), ...changes })
    assert.deepEqual(await users().findById(other.id), recordOf(other))
    assert.equal(await users().update(other.id + 1000, { role: 'admin' }), false)
  })

  test('delete removes that row only; false when there is no such row', async () => {
    const user = await insertUser(ctx.app.repos)
    const other = await insertUser(ctx.app.repos)
    assert.equal(await users().delete(user.id), true)
    assert.equal(await users().findById(user.id), undefined)
    assert.deepEqual(await users().findById(other.id), recordOf(other))
    assert.equal(await users().delete(user.id), false)
  })

  test('list: keyset after an id, in id order, limited, filtered by role and activity', async () => {
    const u1 = await insertUser(ctx.app.repos)
    const u2 = await insertUser(ctx.app.repos, { role: 'admin' })
    const u3 = await insertUser(ctx.app.repos, { is_active: false })
    const u4 = await insertUser(ctx.app.repos, { role: 'admin', is_active: false })
    const ids = async (options: Partial<Parameters<Repositories['users']['list']>[0]>) =>
      (await users().list({ afterId: u1.id - 1, limit: 10, filters: {}, ...options })).map((u) => u.id)

    const all = await users().list({ afterId: u1.id - 1, limit: 10, filters: {} })
    assert.deepEqual(all, [u1, u2, u3, u4].map(recordOf))
    assert.deepEqual(await ids({ afterId: u2.id }), [u3.id, u4.id])
    assert.deepEqual(await ids({ afterId: u4.id }), [])
    assert.deepEqual(await ids({ limit: 2 }), [u1.id, u2.id])
    assert.deepEqual(await ids({ afterId: u1.id, limit: 1 }), [u2.id])
    assert.deepEqual(await ids({ filters: { role: 'admin' } }), [u2.id, u4.id])
    assert.deepEqual(await ids({ filters: { role: 'user' } }), [u1.id, u3.id])
    assert.deepEqual(await ids({ filters: { isActive: false } }), [u3.id, u4.id])
    assert.deepEqual(await ids({ filters: { isActive: true } }), [u1.id, u2.id])
    assert.deepEqual(await ids({ filters: { isActive: true, role: 'user' } }), [u1.id])
  })

  test('list: text matches the name key or the email, with LIKE wildcards taken literally', async () => {
    const tag = uniqueUser().name.slice(5)
    // Upper and lower case of a non-ASCII letter: SQLite's LIKE folds ASCII case only.
    const byName = await insertUser(ctx.app.repos, { name: `N${tag}ÄXa`, name_key: `n${tag}äxa` })
    const byEmail = await insertUser(ctx.app.repos, { email: `e${tag}xb@example.com` })
    const wild = await insertUser(ctx.app.repos, { name: `W${tag}_%!c`, name_key: `w${tag}_%!c` })
    const tame = await insertUser(ctx.app.repos, { name: `W${tag}yz!c`, name_key: `w${tag}yz!c` })
    const before = Math.min(byName.id, byEmail.id, wild.id, tame.id) - 1
    const ids = async (text: string, limit = 10) =>
      (await users().list({ afterId: before, limit, filters: { text } })).map((u) => u.id)

    assert.deepEqual(await ids(`${tag}äxa`), [byName.id])
    assert.deepEqual(await ids(`${tag}xb`), [byEmail.id])
    assert.deepEqual(await ids(tag), [byName.id, byEmail.id, wild.id, tame.id])
    assert.deepEqual(await ids(tag, 3), [byName.id, byEmail.id, wild.id])
    assert.deepEqual(await ids(`${tag}_%!c`), [wild.id])
    assert.deepEqual(await ids(`${tag}__`), [])
    assert.deepEqual(await ids(`${tag}%c`), [])
    assert.deepEqual(await ids(`${tag}y!c`), [])
    assert.deepEqual(await ids(`${tag}yz!`), [tame.id])
    assert.deepEqual(
      (await users().list({ afterId: before, limit: 10, filters: { text: tag, role: 'admin' } })).length,
      0,
    )
  })

  test('countActiveAdmins and lockActiveAdmins count active admins only', async () => {
    const before = await users().countActiveAdmins()
    assert.equal(await users().lockActiveAdmins(), before)
    await insertUser(ctx.app.repos, { role: 'admin' })
    await insertUser(ctx.app.repos, { role: 'admin' })
    await insertUser(ctx.app.repos, { role: 'admin', is_active: false })
    await insertUser(ctx.app.repos, { role: 'user', is_active: true })
    assert.equal(await users().countActiveAdmins(), before + 2)
    assert.equal(await users().lockActiveAdmins(), before + 2)
    assert.equal(await ctx.app.transaction((repos) => repos.users.lockActiveAdmins()), before + 2)
    assert.equal(await ctx.app.transaction((repos) => repos.users.countActiveAdmins()), before + 2)
  })
})

describeEachEngine('users repository: the last active admin', (ctx) => {
  test('two admins demoting each other at once: lockActiveAdmins lets exactly one succeed', async () => {
    const a = await insertUser(ctx.app.repos, { role: 'admin' })
    const b = await insertUser(ctx.app.repos, { role: 'admin' })
    assert.equal(await ctx.app.repos.users.countActiveAdmins(), 2)
    const bothBegun = barrier(2)
    const demote = (target: number) =>
      ctx.app.transaction(async (repos) => {
        if (ctx.engine !== 'sqlite') {
          await repos.users.findById(target)
          await bothBegun()
        }
        if ((await repos.users.lockActiveAdmins()) < 2) return false
        return repos.users.update(target, { role: 'user' })
      })
    const outcomes = await Promise.all([demote(b.id), demote(a.id)])
    assert.deepEqual(outcomes.filter(Boolean), [true], `outcomes: ${JSON.stringify(outcomes)}`)
    assert.equal(await ctx.app.repos.users.countActiveAdmins(), 1)
  })
})
