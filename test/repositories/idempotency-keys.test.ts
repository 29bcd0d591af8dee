/** The idempotency-keys repository against each engine: claims, replays and expiry. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { isUniqueViolation } from '../../src/db/errors.js'
import { describeEachEngine } from '../support/app.js'
import { at, insertPlainUser } from './support.js'

const newKey = () => `key-${randomBytes(6).toString('hex')}`
const hash = (char: string) => char.repeat(64)

describeEachEngine('idempotency keys repository', (ctx) => {
  const keys = () => ctx.app.repos.idempotencyKeys
  const rowOf = (userId: number, key: string) =>
    ctx.app.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('user_id', '=', userId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst()

  test('claim stores a pending key; find reads it back for that user and key only', async () => {
    const [user, other] = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const [key, otherKey] = [newKey(), newKey()]
    await keys().claim(user, key, hash('a'), at(0), at(100))
    await keys().claim(user, otherKey, hash('b'), at(1), at(101))
    await keys().claim(other, key, hash('c'), at(2), at(102))
    assert.deepEqual(await rowOf(user, key), {
      user_id: user,
      idempotency_key: key,
      request_hash: hash('a'),
      response_status: null,
      response_body: null,
      created_at: at(0),
      expires_at: at(100),
    })
    const pending = { response_status: null, response_body: null }
    assert.deepEqual(await keys().find(user, key), {
      request_hash: hash('a'),
      ...pending,
      expires_at: at(100),
    })
    assert.deepEqual(await keys().find(user, otherKey), {
      request_hash: hash('b'),
      ...pending,
      expires_at: at(101),
    })
    assert.deepEqual(await keys().find(other, key), {
      request_hash: hash('c'),
      ...pending,
      expires_at: at(102),
    })
    assert.equal(await keys().find(other, otherKey), undefined)
    assert.equal(await keys().find(user, newKey()), undefined)
  })

  test('claiming a key the user already holds is a unique violation, and leaves the claim as it was', async () => {
    const user = await insertPlainUser(ctx.app.repos)
    const key = newKey()
    await keys().claim(user, key, hash('a'), at(0), at(100))
    await assert.rejects(keys().claim(user, key, hash('b'), at(5), at(200)), (error) =>
      isUniqueViolation(error),
    )
    assert.deepEqual(await keys().find(user, key), {
      request_hash: hash('a'),
      response_status: null,
      response_body: null,
      expires_at: at(100),
    })
  })

  test('of two concurrent claims of one key, exactly one wins; the other is a unique violation', async () => {
    const user = await insertPlainUser(ctx.app.repos)
    const key = newKey()
    const claim = (char: string) =>
      ctx.app.transaction((repos) => repos.idempotencyKeys.claim(user, key, hash(char), at(0), at(100)))
    const outcomes = await Promise.allSettled([claim('a'), claim('b')])
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled')
    const lost = outcomes.filter((outcome) => outcome.status === 'rejected')
    assert.equal(won.length, 1, JSON.stringify(outcomes))
    assert.equal(lost.length, 1)
    assert.ok(isUniqueViolation((lost[0] as PromiseRejectedResult).reason))
    const stored = await keys().find(user, key)
    assert.equal(stored?.request_hash, hash(outcomes[0]!.status === 'fulfilled' ? 'a' : 'b'))
  })

  test('complete stores the response of that user and key only', async () => {
    const [user, other] = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const [key, otherKey] = [newKey(), newKey()]
    for (const [u, k] of [
      [user, key],
      [user, otherKey],
      [other, key],
    ] as const)
      await keys().claim(u, k, hash('a'), at(0), at(100))
    await keys().complete(user, key, 201, '{"id":7}')
    const pending = {
      request_hash: hash('a'),
      response_status: null,
      response_body: null,
      expires_at: at(100),
    }
    assert.deepEqual(await keys().find(user, key), {
      ...pending,
      response_status: 201,
      response_body: '{"id":7}',
    })
    assert.deepEqual(await keys().find(user, otherKey), pending)
    assert.deepEqual(await keys().find(other, key), pending)
    // Nothing to complete: no row appears.
    await keys().complete(other, otherKey, 200, '{}')
    assert.equal(await keys().find(other, otherKey), undefined)
  })

  test('deleteExpired removes that key once it has expired (expires_at <= now), and nothing else', async () => {
    const [user, other] = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const [key, otherKey] = [newKey(), newKey()]
    await keys().claim(user, key, hash('a'), at(0), at(100))
    await keys().claim(user, otherKey, hash('b'), at(0), at(50))
    await keys().claim(other, key, hash('c'), at(0), at(50))

    await keys().deleteExpired(user, key, at(99))
    assert.ok(await keys().find(user, key), 'not yet expired one second before')
    await keys().deleteExpired(user, key, at(100))
    assert.equal(await keys().find(user, key), undefined, 'expired at expires_at')
    // The other key of the user, and the same key of another user, expired too but were not named.
    assert.ok(await keys().find(user, otherKey))
    assert.ok(await keys().find(other, key))
    await keys().deleteExpired(other, key, at(51))
    assert.equal(await keys().find(other, key), undefined)
    assert.ok(await keys().find(user, otherKey))
  })
})

describeEachEngine('idempotency keys repository: sweeping', (ctx) => {
  test('deleteAllExpired removes every key with expires_at <= now and counts them', async () => {
    const keys = ctx.app.repos.idempotencyKeys
    const [user, other] = [await insertPlainUser(ctx.app.repos), await insertPlainUser(ctx.app.repos)]
    const claims = [
      [user, -2],
      [other, -1],
      [user, 0],
      [other, 0],
      [user, 1],
      [other, 3600],
    ] as const
    const claimed: { user: number; key: string; expires: number }[] = []
    for (const [u, expires] of claims) {
      const key = newKey()
      await keys.claim(u, key, hash('a'), at(-100), at(expires))
      claimed.push({ user: u, key, expires })
    }
    const remaining = async () => {
      const left: number[] = []
      for (const { user: u, key, expires } of claimed) if (await keys.find(u, key)) left.push(expires)
      return left
    }
    assert.equal(await keys.deleteAllExpired(at(-3)), 0)
    assert.equal(await keys.deleteAllExpired(at(0)), 4)
    assert.deepEqual(await remaining(), [1, 3600])
    assert.equal(await keys.deleteAllExpired(at(0)), 0)
    assert.equal(await keys.deleteAllExpired(at(1)), 1)
    assert.deepEqual(await remaining(), [3600])
  })
})
